;; Imports the kv capability, which its tests do not grant.
(module
  (import "parley_v1" "input_len" (func $input_len (result i32)))
  (import "parley_kv_v1" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "parley_join") (result i32) (i32.const 0)))
