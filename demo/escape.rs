// A hostile guest: tries to read host secrets, leave its sandbox, and hog resources.
// Every attempt fails or is cut short; the run still ends in a verdict.
use std::fs;

fn main() {
    for path in ["/etc/passwd", "/proc/self/environ", "../../etc/shadow", "/root/.ssh/id_rsa"] {
        println!("read {path}: {:?}", fs::read_to_string(path).map(|s| s.len()).map_err(|e| e.kind()));
    }
    println!("env: {} variables visible", std::env::vars().count());
    println!("write /tmp/x: {:?}", fs::write("/tmp/x", "pwned").map_err(|e| e.kind()));
    let mut v: Vec<Vec<u8>> = Vec::new();
    loop {
        v.push(vec![1u8; 16 << 20]); // allocate until the memory limit says no
    }
}
