;; Hostile: the join hook traps.
(module
  (import "parley_v1" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 1)
  (func (export "parley_join") (result i32)
    unreachable))
