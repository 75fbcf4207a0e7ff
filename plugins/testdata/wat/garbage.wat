;; Hostile: the join hook answers with bytes that are not a decision.
(module
  (import "parley_v1" "output_set" (func $output_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\ffnot json at all {")
  (func (export "parley_join") (result i32)
    (drop (call $output_set (i32.const 0) (i32.const 19)))
    (i32.const 0)))
