;; Bilinear resize of packed RGB uint8, OpenCV INTER_LINEAR with 11-bit fixed-point weights: the same integer
;; arithmetic as resizeBilinearRgbScalar in resample.ts, one output pixel per iteration with its three channels in
;; the lanes of an i32x4 (the fourth lane carries the next pixel's red and is never stored). The four pixel loads are
;; written out rather than called: V8 (Node 20) does not inline a helper, and the call made the loop 4× slower.
;;
;; Assembled by scripts/build-wasm.ts (wabt) into resample-wasm.ts; test/image/resample-wasm.test.ts checks that the
;; committed bytes are this text's and that both implementations give the same bytes.
;;
;; resize(src, rowTab, colTab, out, outRowBytes, width, height)
;;   src     byte address of the source pixels [srcHeight, srcWidth, 3]; 1 readable byte must follow them
;;   rowTab  height × { i32 byte offset of the first source row, i32 byte step to the second (0 at the border),
;;           i32 weight of the second (0..2048) }
;;   colTab  width × { i32 byte offset of the first source pixel in a row, i32 byte step to the second (0 or 3),
;;           i32 weight of the second (0..2048) }
;;   out     byte address of the first output pixel; rows are outRowBytes apart; width × height pixels written
(module
  (memory (export "memory") 1)
  (func (export "resize")
    (param $src i32) (param $rowTab i32) (param $colTab i32) (param $out i32) (param $outRowBytes i32) (param $width i32) (param $height i32)
    (local $rowsEnd i32) (local $colsEnd i32) (local $r0 i32) (local $rs i32) (local $wy v128) (local $o i32) (local $c i32)
    (local $a i32) (local $b i32) (local $d i32) (local $wx v128) (local $p v128) (local $t v128) (local $u v128) (local $r v128)
    (local.set $rowsEnd (i32.add (local.get $rowTab) (i32.mul (local.get $height) (i32.const 12))))
    (local.set $colsEnd (i32.add (local.get $colTab) (i32.mul (local.get $width) (i32.const 12))))
    (block $doneRows
      (loop $rows
        (br_if $doneRows (i32.ge_u (local.get $rowTab) (local.get $rowsEnd)))
        (local.set $r0 (i32.add (local.get $src) (i32.load (local.get $rowTab))))
        (local.set $rs (i32.load offset=4 (local.get $rowTab)))
        (local.set $wy (i32x4.splat (i32.load offset=8 (local.get $rowTab))))
        (local.set $o (local.get $out))
        (local.set $c (local.get $colTab))
        (block $doneCols
          (loop $cols
            (br_if $doneCols (i32.ge_u (local.get $c) (local.get $colsEnd)))
            (local.set $a (i32.add (local.get $r0) (i32.load (local.get $c))))
            (local.set $b (i32.add (local.get $a) (local.get $rs)))
            (local.set $d (i32.load offset=4 (local.get $c)))
            (local.set $wx (i32x4.splat (i32.load offset=8 (local.get $c))))
            ;; t = p00·2048 + (p01 − p00)·wx, u likewise on the second row
            (local.set $p (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero align=1 (local.get $a)))))
            (local.set $t (i32x4.add (i32x4.shl (local.get $p) (i32.const 11))
                                     (i32x4.mul (i32x4.sub (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero align=1 (i32.add (local.get $a) (local.get $d))))) (local.get $p)) (local.get $wx))))
            (local.set $p (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero align=1 (local.get $b)))))
            (local.set $u (i32x4.add (i32x4.shl (local.get $p) (i32.const 11))
                                     (i32x4.mul (i32x4.sub (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero align=1 (i32.add (local.get $b) (local.get $d))))) (local.get $p)) (local.get $wx))))
            ;; (t·2048 + (u − t)·wy + 2^21) >> 22
            (local.set $r (i32x4.shr_s
                            (i32x4.add (i32x4.add (i32x4.shl (local.get $t) (i32.const 11))
                                                  (i32x4.mul (i32x4.sub (local.get $u) (local.get $t)) (local.get $wy)))
                                       (v128.const i32x4 2097152 2097152 2097152 2097152))
                            (i32.const 22)))
            (local.set $r (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_s (local.get $r) (local.get $r))
                                                (i16x8.narrow_i32x4_s (local.get $r) (local.get $r))))
            (v128.store16_lane align=1 0 (local.get $o) (local.get $r))
            (v128.store8_lane offset=2 2 (local.get $o) (local.get $r))
            (local.set $o (i32.add (local.get $o) (i32.const 3)))
            (local.set $c (i32.add (local.get $c) (i32.const 12)))
            (br $cols)))
        (local.set $out (i32.add (local.get $out) (local.get $outRowBytes)))
        (local.set $rowTab (i32.add (local.get $rowTab) (i32.const 12)))
        (br $rows)))))
