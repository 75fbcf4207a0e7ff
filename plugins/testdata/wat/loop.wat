;; Hostile: the join hook never returns.
(module
  (import "parley_v1" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 1)
  (func (export "parley_join") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
