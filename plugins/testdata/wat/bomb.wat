;; Hostile: the join hook grows memory until the host refuses, then traps.
(module
  (import "parley_v1" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 1)
  (func (export "parley_join") (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
