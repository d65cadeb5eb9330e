//! A guest that uses the SDK: counts the words of the case input, reports the counts as its
//! structured result and as metrics. Build it for corral with
//! `cargo build -p guest-sdk --example wordstats --target wasm32-wasip1 --release`.

fn main() {
    let text = guest_sdk::input_string().unwrap_or_default();
    let words = text.split_whitespace().count();
    let longest = text.split_whitespace().map(str::len).max().unwrap_or(0);
    guest_sdk::metric("words", words as f64);
    guest_sdk::metric("longest", longest as f64);
    guest_sdk::check(words > 0, "the input has words");
    guest_sdk::set_result(&format!("{{\"words\": {words}, \"longest\": {longest}}}")).ok();
    println!("{words} words");
}
