//! Records and replay: divergences named exactly, tampering refused, crash-safe writes.

use std::path::{Path, PathBuf};

use corral::compile::Language;
use corral::compile::Source;
use corral::job::{self, Invocation, Recording};
use corral::record::RecordStore as Store;
use corral::record::format::{BlobRef, RunRecord, Tree, TreeFile, hash_of};
use corral::replay::{Divergence, ReplayError, ReplayOptions, replay};
use corral::{DirGrant, Engine, EngineConfig, Policy};
use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("replay::identical", identical),
        Trial::test("replay::divergence_input_file", divergence_input_file),
        Trial::test("replay::divergence_seed", divergence_seed),
        Trial::test("replay::divergence_stdin_byte", divergence_stdin_byte),
        Trial::test(
            "replay::divergence_leaked_host_fact",
            divergence_leaked_host_fact,
        ),
        Trial::test("replay::tamper_record_every_byte", tamper_record),
        Trial::test("replay::tamper_bundle_every_region", tamper_bundle),
        Trial::test("replay::bundle_on_another_machine", bundle_elsewhere),
        Trial::test(
            "replay::refuses_other_engine_unless_best_effort",
            other_engine,
        ),
        Trial::test("replay::refuses_format_too_new_or_old", versions),
        Trial::test("replay::refuses_policy_above_ceiling", ceiling),
        Trial::test("replay::refuses_path_like_input_names", path_like_inputs),
        Trial::test("replay::refuses_missing_blob", missing_blob),
        Trial::test(
            "replay::issue_11_refuses_listings_over_the_staging_caps",
            listing_caps,
        ),
        Trial::test("replay::crash_never_leaves_half_written_record", crash),
    ]
}

const GUEST: &str = r#"
use std::io::Read;
fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let file = std::fs::read_to_string("/data/in.txt").unwrap_or_default();
    let meta = std::fs::metadata("/data/in.txt").map(|m| format!("{:?} {:?}", m.modified(), m.len()));
    let mut r = [0u8; 8];
    let h = std::collections::hash_map::RandomState::new();
    use std::hash::BuildHasher;
    let x = h.hash_one(42u32);
    r[0] = x as u8;
    println!("stdin={} file={} meta={:?} rand={}", input.trim(), file.trim(), meta, r[0]);
}
"#;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
    store: Store,
}

fn setup() -> Result<Setup, Failed> {
    setup_with(false)
}

fn setup_with(leak: bool) -> Result<Setup, Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("in")).map_err(|e| e.to_string())?;
    std::fs::write(root.join("in/in.txt"), "file contents\n").map_err(|e| e.to_string())?;
    let engine = Engine::new(EngineConfig {
        temp_root: root.join("tmp"),
        cache_dir: Some(support::cache_dir()),
        leak_host_metadata: leak,
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let store = Store::new(root.join("store"));
    Ok(Setup {
        _dir: dir,
        root,
        engine,
        store,
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Runs the divergence guest and writes its record; returns the record path.
fn record(s: &Setup, seed: u64, stdin: &str) -> Result<PathBuf, Failed> {
    let source = Source::new(GUEST.as_bytes().to_vec(), "g.rs", Language::Rust);
    let invocation = Invocation {
        stdin: stdin.as_bytes().to_vec(),
        seed,
        dirs: vec![
            DirGrant::parse(&format!("{}::/data", s.root.join("in").display()))
                .map_err(|e| e.to_string())?,
        ],
        ..Invocation::default()
    };
    let mut outcome = rt()
        .block_on(job::run_source(
            &s.engine,
            &source,
            &Policy::strict(),
            &invocation,
            Recording::On,
        ))
        .map_err(|e| e.to_string())?;
    if outcome.report.verdict.kind() != "ok" {
        return Err(format!(
            "guest did not run ok: {}",
            serde_json::to_string(&outcome.report.to_json()).unwrap_or_default()
        )
        .into());
    }
    let path = outcome
        .write_record(&s.engine, &s.store)
        .map_err(|e| e.to_string())?;
    path.ok_or_else(|| Failed::from("no record written"))
}

fn load(path: &Path) -> Result<RunRecord, Failed> {
    RunRecord::parse(&std::fs::read(path).map_err(|e| e.to_string())?)
        .map_err(|e| Failed::from(e.to_string()))
}

/// Writes a modified, resealed record next to the store and returns its path.
fn reseal(s: &Setup, mut rec: RunRecord) -> Result<PathBuf, Failed> {
    rec.seal();
    s.store
        .put_record(&rec.to_bytes())
        .map_err(|e| Failed::from(e.to_string()))
}

fn blob(s: &Setup, bytes: &[u8]) -> Result<BlobRef, Failed> {
    Ok(BlobRef {
        blob: s.store.put_blob(bytes).map_err(|e| e.to_string())?,
        size: bytes.len() as u64,
    })
}

fn replay_ok(s: &Setup, path: &Path) -> Result<corral::replay::ReplayReport, Failed> {
    rt().block_on(replay(&s.engine, path, &ReplayOptions::default()))
        .map_err(|e| Failed::from(format!("refused: {e}")))
}

fn expect_call_divergence(s: &Setup, path: &Path, func: &str) -> Result<(), Failed> {
    let r = replay_ok(s, path)?;
    match &r.divergence {
        Some(Divergence::HostCall {
            expected: Some(e),
            actual: Some(a),
            ..
        }) if e.func == func && a.func == func => Ok(()),
        other => Err(format!(
            "expected a divergence at `{func}`, got {other:?} (identical={})",
            r.identical
        )
        .into()),
    }
}

fn identical() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 7, "hello")?;
    let r = replay_ok(&s, &path)?;
    if !r.identical || r.divergence.is_some() {
        return Err(format!("not identical: {:?}", r.divergence).into());
    }
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    if size > 4096 {
        return Err(format!("record is {size} bytes").into());
    }
    Ok(())
}

fn divergence_input_file() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let mut rec = load(&path)?;
    let tree_ref = rec.inputs.dirs[0].tree.clone();
    let mut tree: Tree = serde_json::from_slice(
        &s.store
            .get_blob(&tree_ref.blob)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    tree.files = vec![TreeFile {
        path: "in.txt".into(),
        contents: blob(&s, b"file contentZ\n")?,
    }];
    rec.inputs.dirs[0].tree = blob(&s, &serde_json::to_vec(&tree).map_err(|e| e.to_string())?)?;
    let changed = reseal(&s, rec)?;
    expect_call_divergence(&s, &changed, "fd_read")
}

fn divergence_seed() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 1, "x")?;
    let mut rec = load(&path)?;
    rec.inputs.seed = 2;
    let changed = reseal(&s, rec)?;
    expect_call_divergence(&s, &changed, "random_get")
}

fn divergence_stdin_byte() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "abcdef")?;
    let mut rec = load(&path)?;
    rec.inputs.stdin = Some(blob(&s, b"abcdeF")?);
    let changed = reseal(&s, rec)?;
    let r = replay_ok(&s, &changed)?;
    match &r.divergence {
        Some(Divergence::HostCall {
            index,
            expected: Some(e),
            actual: Some(a),
        }) if e.func == "fd_read" && a.func == "fd_read" && e.args == a.args => {
            let _ = index;
            Ok(())
        }
        other => Err(format!("expected the stdin read to diverge, got {other:?}").into()),
    }
}

fn divergence_leaked_host_fact() -> Result<(), Failed> {
    // A deliberately weakened engine passes host file timestamps to the guest. Each run
    // stages its input afresh (new mtime), so the replay must diverge at the stat.
    let s = setup_with(true)?;
    let path = record(&s, 0, "x")?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    // `read_to_string` stats the file (fd_filestat_get) before the explicit `metadata`.
    expect_call_divergence(&s, &path, "fd_filestat_get")?;
    // The same guest under the real gate replays identically.
    let t = setup()?;
    let p2 = record(&t, 0, "x")?;
    if !replay_ok(&t, &p2)?.identical {
        return Err("the unweakened run must replay identically".into());
    }
    Ok(())
}

fn expect_refused(s: &Setup, path: &Path, what: &str) -> Result<(), Failed> {
    match rt().block_on(replay(&s.engine, path, &ReplayOptions::default())) {
        Err(ReplayError::Refused(_)) => Ok(()),
        Err(e) => Err(format!("{what}: expected a refusal, got host error {e}").into()),
        Ok(r) => Err(format!("{what}: was replayed (identical={})", r.identical).into()),
    }
}

fn tamper_record() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let target = s.root.join("store/records/zz/copy.json");
    std::fs::create_dir_all(target.parent().unwrap_or(&s.root)).map_err(|e| e.to_string())?;
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x20] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            std::fs::write(&target, &b).map_err(|e| e.to_string())?;
            if RunRecord::parse(&b).is_ok() {
                return Err(format!("flipping byte {i} (^{flip:#x}) was not detected").into());
            }
        }
    }
    // Spot-check through the whole replay path too.
    for i in (0..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        std::fs::write(&target, &b).map_err(|e| e.to_string())?;
        expect_refused(&s, &target, &format!("byte {i}"))?;
    }
    // A blob altered in the store is refused too.
    let rec = load(&path)?;
    let stdout_blob = &rec.outcome.stdout.data.blob;
    let hex = stdout_blob.trim_start_matches("blake3:");
    let blob_path = s.root.join("store/blobs").join(&hex[..2]).join(&hex[2..]);
    let mut data = std::fs::read(&blob_path).map_err(|e| e.to_string())?;
    data[0] ^= 1;
    std::fs::write(&blob_path, &data).map_err(|e| e.to_string())?;
    expect_refused(&s, &path, "altered blob")?;
    drop(dir);
    Ok(())
}

fn tamper_bundle() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let out = s.root.join("b.bundle");
    corral::replay::bundle(&path, &out, None).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
    let elsewhere = setup()?; // a machine without the store
    let r = rt()
        .block_on(replay(&elsewhere.engine, &out, &ReplayOptions::default()))
        .map_err(|e| format!("the intact bundle must replay: {e}"))?;
    if !r.identical {
        return Err("the intact bundle must replay identically".into());
    }
    // Every region: header, record, each blob header and body, trailer. Flip bytes at a
    // stride plus every region boundary region-by-region.
    let target = elsewhere.root.join("t.bundle");
    let mut positions: Vec<usize> = (0..bytes.len())
        .step_by((bytes.len() / 400).max(1))
        .collect();
    positions.extend(0..64);
    positions.extend(bytes.len().saturating_sub(64)..bytes.len());
    for i in positions {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        std::fs::write(&target, &b).map_err(|e| e.to_string())?;
        expect_refused(&elsewhere, &target, &format!("bundle byte {i}"))?;
    }
    // Truncated and extended bundles.
    for b in [
        bytes[..bytes.len() - 1].to_vec(),
        [bytes.clone(), vec![0]].concat(),
    ] {
        std::fs::write(&target, &b).map_err(|e| e.to_string())?;
        expect_refused(&elsewhere, &target, "truncated/extended bundle")?;
    }
    Ok(())
}

fn bundle_elsewhere() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 3, "abc")?;
    let out = s.root.join("b.bundle");
    corral::replay::bundle(&path, &out, None).map_err(|e| e.to_string())?;
    let other = setup()?;
    let copy = other.root.join("moved.bundle");
    std::fs::copy(&out, &copy).map_err(|e| e.to_string())?;
    let r = rt()
        .block_on(replay(&other.engine, &copy, &ReplayOptions::default()))
        .map_err(|e| e.to_string())?;
    if !r.identical {
        return Err(format!("{:?}", r.divergence).into());
    }
    Ok(())
}

fn other_engine() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let mut rec = load(&path)?;
    rec.engine.config = hash_of(b"some other configuration");
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "other engine")?;
    let opts = ReplayOptions {
        best_effort: true,
        ..ReplayOptions::default()
    };
    let r = rt()
        .block_on(replay(&s.engine, &changed, &opts))
        .map_err(|e| e.to_string())?;
    if r.notes.is_empty() || !r.identical {
        return Err(format!(
            "best effort must replay and say what may differ: {:?} {}",
            r.notes, r.identical
        )
        .into());
    }
    Ok(())
}

fn versions() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    for (major, minor, want) in [(1, 99, "newer"), (2, 0, "newer"), (0, 9, "older")] {
        let mut rec = load(&path)?;
        rec.format.major = major;
        rec.format.minor = minor;
        rec.seal();
        match RunRecord::parse(&rec.to_bytes()) {
            Err(e) if e.to_string().contains(want) => {}
            other => return Err(format!("format {major}.{minor}: {other:?}").into()),
        }
    }
    Ok(())
}

fn ceiling() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let mut rec = load(&path)?;
    let toml = "[limits]\nfuel = 10_000_000_000_000\nmemory_bytes = 4_294_967_296\n";
    rec.policy.toml = blob(&s, toml.as_bytes())?;
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "policy above the ceiling")?;
    let mut rec = load(&path)?;
    rec.policy.toml = blob(&s, b"[limits]\nalow = 1\n")?;
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "invalid policy")
}

fn path_like_inputs() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\b", ""] {
        let mut rec = load(&path)?;
        let tree = Tree {
            dirs: vec![],
            files: vec![TreeFile {
                path: bad.into(),
                contents: blob(&s, b"x")?,
            }],
        };
        rec.inputs.dirs[0].tree = blob(&s, &serde_json::to_vec(&tree).map_err(|e| e.to_string())?)?;
        let changed = reseal(&s, rec)?;
        expect_refused(&s, &changed, bad)?;
    }
    let mut rec = load(&path)?;
    rec.inputs.dirs[0].guest = "/data/../etc".into();
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "guest path")
}

/// Issue 11: replay rebuilds input dirs from a record with the caps a fresh run's staging
/// applies (bytes, entries, depth), checked on the listing before any blob is read or any
/// file written; an invalid listing (one path both a file and a directory, a file in a
/// directory the listing lacks) is a refusal too, never a host error.
fn listing_caps() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let one_mib = blob(&s, &vec![7u8; 1 << 20])?;
    let small = blob(&s, b"x")?;
    let deep: Vec<String> = (1..=200).map(|n| vec!["d"; n].join("/")).collect();
    let cases: Vec<(&str, Tree)> = vec![
        (
            "one path both a file and a directory",
            Tree {
                dirs: vec!["a".into()],
                files: vec![TreeFile {
                    path: "a".into(),
                    contents: small.clone(),
                }],
            },
        ),
        (
            "one 1 MiB blob under 1,100 paths (1.1 GiB)",
            Tree {
                dirs: vec![],
                files: (0..1100)
                    .map(|i| TreeFile {
                        path: format!("f{i}"),
                        contents: one_mib.clone(),
                    })
                    .collect(),
            },
        ),
        (
            "a 200-level tree",
            Tree {
                files: vec![TreeFile {
                    path: format!("{}/f", deep[199]),
                    contents: small.clone(),
                }],
                dirs: deep,
            },
        ),
        (
            "a file in a directory the listing lacks",
            Tree {
                dirs: vec![],
                files: vec![TreeFile {
                    path: "missing/f".into(),
                    contents: small.clone(),
                }],
            },
        ),
    ];
    // 600 MiB in each of two input dirs: each within the cap, together over it.
    let half: Vec<TreeFile> = (0..600)
        .map(|i| TreeFile {
            path: format!("f{i}"),
            contents: one_mib.clone(),
        })
        .collect();
    let mut rec = load(&path)?;
    let tree = Tree {
        dirs: vec![],
        files: half,
    };
    let listing = blob(&s, &serde_json::to_vec(&tree).map_err(|e| e.to_string())?)?;
    let mut second = rec.inputs.dirs[0].clone();
    second.guest = "/data2".into();
    rec.inputs.dirs[0].tree = listing.clone();
    second.tree = listing;
    rec.inputs.dirs.push(second);
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "two inputs of 600 MiB")?;
    for (what, tree) in cases {
        let mut rec = load(&path)?;
        rec.inputs.dirs[0].tree = blob(&s, &serde_json::to_vec(&tree).map_err(|e| e.to_string())?)?;
        let changed = reseal(&s, rec)?;
        expect_refused(&s, &changed, what)?;
        // Refused before anything was staged (in the engine's work dir, where replays
        // rebuild their inputs).
        let left: Vec<_> = std::fs::read_dir(s.engine.work_dir())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        if !left.is_empty() {
            return Err(format!("{what}: the refused replay left {left:?}").into());
        }
    }
    Ok(())
}

fn missing_blob() -> Result<(), Failed> {
    let s = setup()?;
    let path = record(&s, 0, "x")?;
    let mut rec = load(&path)?;
    rec.outcome.stdout.data = BlobRef {
        blob: hash_of(b"never stored"),
        size: 12,
    };
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "missing stdout blob")?;
    let mut rec = load(&path)?;
    rec.inputs.stdin = Some(BlobRef {
        blob: hash_of(b"never stored either"),
        size: 19,
    });
    let changed = reseal(&s, rec)?;
    expect_refused(&s, &changed, "missing stdin blob")
}

/// Kills `corral run` at random moments around the end of the run (when records are
/// written) and checks that every record file left in the store is complete and valid.
fn crash() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let src = dir.path().join("big.rs");
    std::fs::write(
        &src,
        "fn main(){ let s = \"x\".repeat(1 << 19); for i in 0..4 { println!(\"{i}{s}\"); } }",
    )
    .map_err(|e| e.to_string())?;
    let home = dir.path().join("home");
    let run = |kill_after: Option<std::time::Duration>| -> Result<(), Failed> {
        let mut child = crate::cli::corral()
            .env("CORRAL_HOME", &home)
            .args(["run", "--json", "--policy", "standard"])
            .arg(&src)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(d) = kill_after {
            std::thread::sleep(d);
            let _ = child.kill();
        }
        let _ = child.wait();
        Ok(())
    };
    let t0 = std::time::Instant::now();
    run(None)?;
    let full = t0.elapsed();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..30 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let frac = 0.3 + (seed % 1000) as f64 / 1000.0 * 0.9;
        run(Some(full.mul_f64(frac)))?;
    }
    let records = home.join("store/records");
    let mut count = 0;
    for sub in std::fs::read_dir(&records)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        for f in std::fs::read_dir(sub.path())
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue; // temp files of killed writes are never named *.json
            }
            let bytes = std::fs::read(f.path()).map_err(|e| e.to_string())?;
            RunRecord::parse(&bytes).map_err(|e| format!("half-written record {name}: {e}"))?;
            if blake3::hash(&bytes).to_hex().as_str()[2..] != name[..name.len() - 5] {
                return Err(format!("record {name} does not match its name").into());
            }
            count += 1;
        }
    }
    if count == 0 {
        return Err("no record survived at all (the uninterrupted run must write one)".into());
    }
    Ok(())
}
