//! The import allow-list: exactly what the gate implements. Admission rejects anything else.

/// The WASI preview 1 import module.
pub const WASI_P1: &str = "wasi_snapshot_preview1";
/// corral's own import module (the guest SDK's ABI).
pub const CORRAL_V1: &str = "corral_v1";

/// Every `wasi_snapshot_preview1` function the gate implements (all 46 of the witx).
pub const WASI_P1_FUNCTIONS: [&str; 46] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The one import of the scientific Python runner beyond WASI: its "door" to host tools
/// (`host::call(ptr, len, out_ptr_ptr, out_len_ptr) -> i32`). The gate answers -1 (no host)
/// to every call and records it as a refusal; user modules may not import it.
pub const HOST_CALL: (&str, &str) = ("host", "call");

/// Every `corral_v1` function (see `guest-sdk`).
pub const CORRAL_V1_FUNCTIONS: [&str; 4] = ["input_size", "input_read", "result_write", "metric"];

/// Whether `module::name` is a function import the gate provides.
pub fn is_allowed(module: &str, name: &str) -> bool {
    match module {
        WASI_P1 => WASI_P1_FUNCTIONS.contains(&name),
        CORRAL_V1 => CORRAL_V1_FUNCTIONS.contains(&name),
        _ => false,
    }
}
