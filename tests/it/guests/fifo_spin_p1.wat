;; Opens /rw/pipe (a FIFO in a `:rw` dir) for reading, then spins. If the host opened the
;; FIFO itself, the run's thread would block in open(2) forever (nothing writes to it),
;; where neither fuel nor the wall clock reaches; the gate refuses the open, and the spin
;; ends at the wall clock. fds: 3 = /tmp (scratch), 4 = /rw.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0x100) "pipe")
  (func (export "_start")
    (drop (call $path_open (i32.const 4) (i32.const 0) (i32.const 0x100) (i32.const 4)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0x40)))
    (loop $spin (br $spin))))
