// A small, honest guest: counts primes below N (first argument, default 100 000)
// and reports how long it took by its own clock — which inside corral is virtual.
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let t = Instant::now();
    let mut sieve = vec![true; n];
    let mut count = 0;
    for i in 2..n {
        if sieve[i] {
            count += 1;
            let mut j = i * i;
            while j < n {
                sieve[j] = false;
                j += i;
            }
        }
    }
    println!("{count} primes below {n} (virtual time: {:?})", t.elapsed());
}
