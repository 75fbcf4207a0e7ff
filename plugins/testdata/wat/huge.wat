;; Hostile: the join hook sets 2 MiB of output, over the host's limit, and
;; returns success regardless of the status it gets.
(module
  (import "parley_v1" "output_set" (func $output_set (param i32 i32) (result i32)))
  (memory (export "memory") 33)
  (func (export "parley_join") (result i32)
    (memory.fill (i32.const 0) (i32.const 32) (i32.const 2097152))
    (drop (call $output_set (i32.const 0) (i32.const 2097152)))
    (i32.const 0)))
