;; A join policy written directly in WebAssembly text, from docs/abi.md
;; alone: it allows joins whose input contains "room":"lobby" (with a
;; 300 kbit/s cap) and denies all others. It proves the ABI is usable
;; without any SDK.
(module
  (import "parley_v1" "input_len" (func $input_len (result i32)))
  (import "parley_v1" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "parley_v1" "output_set" (func $output_set (param i32 i32) (result i32)))
  (import "parley_v1" "error_set" (func $error_set (param i32 i32) (result i32)))
  (import "parley_log_v1" "log" (func $log (param i32 i32 i32) (result i32)))

  (memory (export "memory") 2)

  ;; Constant data below offset 1024; the input buffer starts at 1024.
  (data (i32.const 0) "\"room\":\"lobby\"")                                         ;; 14 bytes
  (data (i32.const 64) "{\"allow\":true,\"max_bitrate\":300000}")                  ;; 35 bytes
  (data (i32.const 128) "{\"allow\":false,\"code\":\"forbidden\",\"reason\":\"wat: only the lobby is open\"}") ;; 73 bytes
  (data (i32.const 256) "wat plugin: join")                                          ;; 16 bytes
  (data (i32.const 320) "input too large")                                           ;; 15 bytes
  (data (i32.const 384) "{\"hooks\":[\"join\"]}")                                   ;; 18 bytes

  ;; init declares the hooks served.
  (func (export "parley_init") (result i32)
    (drop (call $output_set (i32.const 384) (i32.const 18)))
    (i32.const 0))

  ;; match returns 1 if the 14-byte pattern at 0 occurs in [1024, 1024+n).
  (func $match (param $n i32) (result i32)
    (local $i i32) (local $j i32)
    (local.set $i (i32.const 0))
    (block $done
      (loop $outer
        (br_if $done (i32.gt_s (i32.add (local.get $i) (i32.const 14)) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $inner
            (br_if $mismatch
              (i32.ne
                (i32.load8_u (i32.add (i32.const 1024) (i32.add (local.get $i) (local.get $j))))
                (i32.load8_u (local.get $j))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $inner (i32.lt_u (local.get $j) (i32.const 14)))
            (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const 0))

  (func (export "parley_join") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    ;; the buffer holds 2 pages minus 1024 bytes
    (if (i32.gt_u (local.get $n) (i32.const 130048))
      (then
        (drop (call $error_set (i32.const 320) (i32.const 15)))
        (return (i32.const 1))))
    (drop (call $input_read (i32.const 1024) (local.get $n)))
    (drop (call $log (i32.const 1) (i32.const 256) (i32.const 16)))
    (if (call $match (local.get $n))
      (then (drop (call $output_set (i32.const 64) (i32.const 35))))
      (else (drop (call $output_set (i32.const 128) (i32.const 73)))))
    (i32.const 0))
)
