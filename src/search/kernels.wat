;; WASM SIMD scoring kernels for SemanticIndex (src/search/simd.ts loads them; the bytes are in simd-wasm.ts,
;; made by `wat2wasm` (SIMD is on by default in wabt ≥ 1.0.30) from this file: tools/build-search-wasm.sh).
;;
;; dot_i8(q, a, n, d, p, out): out[r] = Σ_{i<p} a[r·d + i] · q[i] for r < n, with a int8 rows of stride d
;;   and q int16 (the query quantised by the caller so that no int32 sum can overflow). 16 codes per step:
;;   sign-extend to two i16x8 halves and multiply-add pairs with i32x4.dot_i16x8_s; the p mod 16 tail is scalar.
;; dot_i8_rows(q, a, rows, m, d, p): for j < m, rows[j] (an int32 row index) is replaced by the dot product of
;;   that row with q, as dot_i8 computes it: the funnel's rescoring of a shortlist, in place so it needs no
;;   second buffer (row j is read before out j is written).
;; hamming(qb, b, n, w, out, hist): out[r] = popcount(b[r·w .. r·w + w) XOR qb), w u32 words per row, two at a time
;;   with i64.popcnt; hist[h] (i32, zeroed by the caller, 32·w + 1 entries) counts the rows at distance h, so the
;;   caller picks the shortlist's threshold distance without another pass.
(module
  (memory (export "memory") 1)
  ;; Σ_{i<p} row[i] · q[i]: int8 row at byte offset $row, int16 q; p16 = p rounded down to 16.
  (func $row_dot (param $q i32) (param $row i32) (param $p i32) (param $p16 i32) (result i32)
    (local $i i32) (local $acc v128) (local $s i32) (local $v v128) (local $qi i32)
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (block $vend
      (loop $vec
        (br_if $vend (i32.ge_u (local.get $i) (local.get $p16)))
        (local.set $v (v128.load (i32.add (local.get $row) (local.get $i))))
        (local.set $qi (i32.add (local.get $q) (i32.shl (local.get $i) (i32.const 1))))
        (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $v)) (v128.load (local.get $qi)))))
        (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $v)) (v128.load offset=16 (local.get $qi)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $vec)))
    (local.set $s (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
      (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
    (block $tend
      (loop $tail
        (br_if $tend (i32.ge_u (local.get $i) (local.get $p)))
        (local.set $s (i32.add (local.get $s)
          (i32.mul (i32.load8_s (i32.add (local.get $row) (local.get $i)))
                   (i32.load16_s (i32.add (local.get $q) (i32.shl (local.get $i) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (local.get $s))
  (func (export "dot_i8") (param $q i32) (param $a i32) (param $n i32) (param $d i32) (param $p i32) (param $out i32)
    (local $r i32) (local $p16 i32)
    (local.set $p16 (i32.and (local.get $p) (i32.const -16)))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $n)))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2)))
          (call $row_dot (local.get $q) (i32.add (local.get $a) (i32.mul (local.get $r) (local.get $d))) (local.get $p) (local.get $p16)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows))))
  (func (export "dot_i8_rows") (param $q i32) (param $a i32) (param $rows i32) (param $m i32) (param $d i32) (param $p i32)
    (local $j i32) (local $p16 i32) (local $at i32)
    (local.set $p16 (i32.and (local.get $p) (i32.const -16)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $j) (local.get $m)))
        (local.set $at (i32.add (local.get $rows) (i32.shl (local.get $j) (i32.const 2))))
        (i32.store (local.get $at)
          (call $row_dot (local.get $q) (i32.add (local.get $a) (i32.mul (i32.load (local.get $at)) (local.get $d))) (local.get $p) (local.get $p16)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each))))
  (func (export "hamming") (param $qb i32) (param $b i32) (param $n i32) (param $w i32) (param $out i32) (param $hist i32)
    (local $r i32) (local $j i32) (local $row i32) (local $h i64) (local $w2 i32) (local $ha i32)
    (local.set $w2 (i32.and (local.get $w) (i32.const -2)))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $n)))
        (local.set $row (i32.add (local.get $b) (i32.shl (i32.mul (local.get $r) (local.get $w)) (i32.const 2))))
        (local.set $h (i64.const 0))
        (local.set $j (i32.const 0))
        (block $e
          (loop $l
            (br_if $e (i32.ge_u (local.get $j) (local.get $w2)))
            (local.set $h (i64.add (local.get $h) (i64.popcnt (i64.xor
              (i64.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
              (i64.load (i32.add (local.get $qb) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $l)))
        (if (i32.lt_u (local.get $j) (local.get $w))
          (then
            (local.set $h (i64.add (local.get $h) (i64.extend_i32_u (i32.popcnt (i32.xor
              (i32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
              (i32.load (i32.add (local.get $qb) (i32.shl (local.get $j) (i32.const 2)))))))))))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (i32.wrap_i64 (local.get $h)))
        (local.set $ha (i32.add (local.get $hist) (i32.shl (i32.wrap_i64 (local.get $h)) (i32.const 2))))
        (i32.store (local.get $ha) (i32.add (i32.load (local.get $ha)) (i32.const 1)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))))
