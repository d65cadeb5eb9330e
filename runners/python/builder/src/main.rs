//! Builds corral's Python runner reproducibly: componentize-py (the crates.io library, pinned
//! by `Cargo.lock`), with its build-time interpreter living in a deterministic world.
//!
//! componentize-py links CPython and the app into a component, then pre-initialises it: it
//! runs CPython's start-up and imports the app inside its own wasmtime, and snapshots the heap
//! into the component. Its default WASI context gives that interpreter real entropy, the real
//! clocks and the real file system, and all of it ends up in the snapshot: the `str` hash
//! secret and the Rust runtime's HashMap keys (entropy), `logging`'s start time (wall clock),
//! the import system's cached directory mtimes (file timestamps) and the order of its cached
//! directory listings (the host file system's order: hash order on ext4, creation order on
//! tmpfs). So two builds differed in ~20 MB of heap.
//!
//! Here the library's `add_to_linker` hook installs wasmtime-wasi as usual, then replaces every
//! interface whose answers depend on the machine or the moment:
//!
//! | interface | here |
//! |---|---|
//! | `wasi:random/{random,insecure,insecure-seed}` | one fixed stream (splitmix64 from a constant) |
//! | `wasi:clocks/wall-clock` | 2026-01-01T00:00:00Z, advancing 1 µs per read |
//! | `wasi:clocks/monotonic-clock` | 0, advancing 1 µs per read (waits are wasmtime-wasi's) |
//! | `wasi:filesystem/types` `stat`, `stat-at` | every timestamp 2026-01-01T00:00:00Z; directories of size 0 |
//! | `wasi:filesystem/types` `metadata-hash`, `metadata-hash-at` | a hash of (type, size, links), not the host inode |
//! | `wasi:filesystem/types` `read-directory` | the listing sorted by name |
//!
//! (The rest of `wasi:filesystem/types` is wasmtime-wasi's, by delegation.) The directories
//! mounted are componentize-py's own (its standard library and helpers, extracted from this
//! binary) and a fresh copy of `app.py` and `wit/`, so nothing of the host's Python
//! installation and no stale file (an old `__pycache__`) is visible either. componentize-py's
//! own steps (linking, bindings, writing the component) are already deterministic.
//!
//! usage: corral-python-runner-builder SRC_DIR OUT_WASM
//! (SRC_DIR holds `app.py` and `wit/`; the world is `runner`.)

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use componentize_py::{ComponentGenerator, Ctx};
use wasmtime::StoreContextMut;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, HostDescriptor, HostDirectoryEntryStream,
    MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, FsError, FsResult};

/// 2026-01-01T00:00:00Z: the wall clock's start and every file timestamp.
const EPOCH_SECONDS: u64 = 1_767_225_600;
/// How far each clock read advances the virtual clocks (nanoseconds).
const TICK_NS: u64 = 1_000;

const RANDOM: &str = "wasi:random/random@0.2.12";
const INSECURE: &str = "wasi:random/insecure@0.2.12";
const INSECURE_SEED: &str = "wasi:random/insecure-seed@0.2.12";
const WALL: &str = "wasi:clocks/wall-clock@0.2.12";

static RNG: AtomicU64 = AtomicU64::new(0x636f_7272_616c_3135); // "corral15"
static CLOCK_NS: AtomicU64 = AtomicU64::new(0);
/// Sorted listings, by directory-entry-stream handle (filled when the stream is created).
static LISTINGS: Mutex<Option<HashMap<u32, VecDeque<DirectoryEntry>>>> = Mutex::new(None);

fn next_u64() -> u64 {
    let mut z = RNG
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random_bytes(len: u64) -> wasmtime::Result<Vec<u8>> {
    if len > 1 << 20 {
        wasmtime::bail!("a build-time random read of {len} bytes");
    }
    let mut out = Vec::with_capacity(len as usize);
    while out.len() < len as usize {
        out.extend_from_slice(&next_u64().to_le_bytes());
    }
    out.truncate(len as usize);
    Ok(out)
}

fn tick() -> u64 {
    CLOCK_NS.fetch_add(TICK_NS, Ordering::Relaxed) + TICK_NS
}

fn fixed_time() -> Datetime {
    Datetime {
        seconds: EPOCH_SECONDS,
        nanoseconds: 0,
    }
}

fn fix_stat(mut s: DescriptorStat) -> DescriptorStat {
    if s.type_ == DescriptorType::Directory {
        // A directory's size is the file system's business (4096 on ext4, a count of entries
        // on tmpfs).
        s.size = 0;
    }
    s.data_access_timestamp = Some(fixed_time());
    s.data_modification_timestamp = Some(fixed_time());
    s.status_change_timestamp = Some(fixed_time());
    s
}

fn hash_of(s: &DescriptorStat) -> MetadataHashValue {
    let ty = s.type_ as u64;
    MetadataHashValue {
        lower: s.size ^ (ty << 56),
        upper: s.link_count,
    }
}

/// `wasi:filesystem/types` as wasmtime-wasi implements it, but with fixed timestamps,
/// inode-free metadata hashes and listings sorted by name.
struct DetFs<'a>(WasiFilesystemCtxView<'a>);

struct DetFsData;

impl HasData for DetFsData {
    type Data<'a> = DetFs<'a>;
}

impl types::Host for DetFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.0, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.0, err)
    }
}

impl HostDescriptor for DetFs<'_> {
    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        HostDescriptor::stat(&mut self.0, fd).await.map(fix_stat)
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        HostDescriptor::stat_at(&mut self.0, fd, path_flags, path)
            .await
            .map(fix_stat)
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        self.stat(fd).await.map(|s| hash_of(&s))
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        self.stat_at(fd, path_flags, path)
            .await
            .map(|s| hash_of(&s))
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        let stream = HostDescriptor::read_directory(&mut self.0, fd).await?;
        // Drain the host's listing now and keep it sorted; the stream the guest gets is the
        // host's (now empty), served from this copy.
        let mut entries = Vec::new();
        loop {
            let borrowed = Resource::<DirectoryEntryStream>::new_borrow(stream.rep());
            match HostDirectoryEntryStream::read_directory_entry(&mut self.0, borrowed).await? {
                Some(e) => entries.push(e),
                None => break,
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        LISTINGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_default()
            .insert(stream.rep(), entries.into());
        Ok(stream)
    }

    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
        len: Filesize,
        advice: Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.0, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.0, fd).await
    }

    async fn get_flags(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.0, fd).await
    }

    async fn get_type(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<DescriptorType> {
        HostDescriptor::get_type(&mut self.0, fd).await
    }

    async fn set_size(
        &mut self,
        fd: Resource<Descriptor>,
        size: Filesize,
    ) -> FsResult<()> {
        HostDescriptor::set_size(&mut self.0, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.0, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: Filesize,
        offset: Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.0, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: Filesize,
    ) -> FsResult<Filesize> {
        HostDescriptor::write(&mut self.0, fd, buf, offset).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.0, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        HostDescriptor::create_directory_at(&mut self.0, fd, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times_at(&mut self.0, fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        // TODO delete the path flags from this function
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        HostDescriptor::link_at(&mut self.0, fd, // TODO delete the path flags from this function
        old_path_flags, old_path, new_descriptor, new_path).await
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        HostDescriptor::open_at(&mut self.0, fd, path_flags, path, oflags, flags).await
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.0, fd)
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.0, fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        HostDescriptor::remove_directory_at(&mut self.0, fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        HostDescriptor::rename_at(&mut self.0, fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        HostDescriptor::symlink_at(&mut self.0, fd, src_path, dest_path).await
    }

    async fn unlink_file_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        HostDescriptor::unlink_file_at(&mut self.0, fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.0, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        HostDescriptor::write_via_stream(&mut self.0, fd, offset)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        HostDescriptor::append_via_stream(&mut self.0, fd)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.0, a, b).await
    }
}

impl HostDirectoryEntryStream for DetFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        Ok(LISTINGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_default()
            .get_mut(&stream.rep())
            .and_then(VecDeque::pop_front))
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.0, stream)
    }
}

/// `wasi:clocks/monotonic-clock` reading a virtual clock (waits are wasmtime-wasi's).
struct DetClock<'a>(WasiClocksCtxView<'a>);

struct DetClockData;

impl HasData for DetClockData {
    type Data<'a> = DetClock<'a>;
}

impl monotonic_clock::Host for DetClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(tick())
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(TICK_NS)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = when.saturating_sub(CLOCK_NS.load(Ordering::Relaxed));
        monotonic_clock::Host::subscribe_duration(&mut self.0, wait)
    }

    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        monotonic_clock::Host::subscribe_duration(&mut self.0, duration)
    }
}

fn deterministic_wasi(linker: &mut Linker<Ctx>) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    // Each interface below is defined again, whole (defining an instance replaces it).
    linker.allow_shadowing(true);
    types::add_to_linker::<Ctx, DetFsData>(linker, |c| DetFs(c.filesystem()))?;
    monotonic_clock::add_to_linker::<Ctx, DetClockData>(linker, |c| DetClock(c.clocks()))?;

    let mut i = linker.instance(RANDOM)?;
    i.func_wrap("get-random-bytes", |_: StoreContextMut<'_, Ctx>, (len,): (u64,)| {
        Ok((random_bytes(len)?,))
    })?;
    i.func_wrap("get-random-u64", |_: StoreContextMut<'_, Ctx>, (): ()| {
        Ok((next_u64(),))
    })?;
    let mut i = linker.instance(INSECURE)?;
    i.func_wrap(
        "get-insecure-random-bytes",
        |_: StoreContextMut<'_, Ctx>, (len,): (u64,)| Ok((random_bytes(len)?,)),
    )?;
    i.func_wrap(
        "get-insecure-random-u64",
        |_: StoreContextMut<'_, Ctx>, (): ()| Ok((next_u64(),)),
    )?;
    let mut i = linker.instance(INSECURE_SEED)?;
    i.func_wrap("insecure-seed", |_: StoreContextMut<'_, Ctx>, (): ()| {
        Ok(((next_u64(), next_u64()),))
    })?;
    let mut i = linker.instance(WALL)?;
    i.func_wrap("now", |_: StoreContextMut<'_, Ctx>, (): ()| {
        let ns = tick();
        Ok((Datetime {
            seconds: EPOCH_SECONDS + ns / 1_000_000_000,
            nanoseconds: (ns % 1_000_000_000) as u32,
        },))
    })?;
    i.func_wrap("resolution", |_: StoreContextMut<'_, Ctx>, (): ()| {
        Ok((Datetime {
            seconds: 0,
            nanoseconds: TICK_NS as u32,
        },))
    })?;
    Ok(())
}

/// Copies `app.py` and `wit/` from `from` into `to` (which must not exist): the build-time
/// interpreter mounts the source directory, so it must hold exactly these files (a stale
/// `__pycache__` left by an earlier build, say, would change what it does).
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    fn copy_dir(from: &Path, to: &Path) -> Result<()> {
        std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
        let mut entries: Vec<_> = std::fs::read_dir(from)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let (src, dst) = (e.path(), to.join(e.file_name()));
            if e.file_type()?.is_dir() {
                copy_dir(&src, &dst)?;
            } else {
                std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            }
        }
        Ok(())
    }
    std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
    std::fs::copy(from.join("app.py"), to.join("app.py")).context("copying app.py")?;
    copy_dir(&from.join("wit"), &to.join("wit"))
}

async fn build(given: &Path, out: &Path) -> Result<()> {
    let src = std::env::temp_dir().join(format!("corral-python-runner-src-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&src);
    copy_sources(given, &src)?;
    let built = generate(&src, out).await;
    let _ = std::fs::remove_dir_all(&src);
    built
}

async fn generate(src: &Path, out: &Path) -> Result<()> {
    let src_str = src.to_str().context("the source path is not UTF-8")?;
    let wit = src.join("wit");
    let none = HashMap::new();
    ComponentGenerator {
        wit_paths: &[wit.as_path()],
        worlds: &["runner"],
        features: &[],
        all_features: false,
        world_module: None,
        python_path: &[src_str],
        module_worlds: &[],
        app_name: "app",
        output_path: out,
        add_to_linker: Some(&deterministic_wasi),
        stub_wasi: false,
        import_interface_names: &none,
        export_interface_names: &none,
        full_names: false,
        intersect_world: None,
    }
    .generate()
    .await
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, out] = args.as_slice() else {
        bail!("usage: corral-python-runner-builder SRC_DIR OUT_WASM");
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(build(Path::new(src), Path::new(out)))
}
