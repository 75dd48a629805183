// sead: definitions shared by step.wgsl and train.wgsl. The host prepends this file to
// each of them (WGSL has no include), so a browser build can do the same: plain WGSL.
//
// The model (docs/DESIGN.md, "The model"): each cell holds C_IN clamped inputs x and C_H
// hidden channels h,
// s = [x, h]. One step, for every cell p:
//   z_f = b1_f + sum_k sum_c W1[k][c][f] * s_c(p + k)        (perceive, K = 3 or 9)
//   a_f = relu(z_f)
//   u_j = b2_j + sum_f W2[f][j] * a_f   (+ h_j when RESIDUAL)  (mix)
//   h'_j = tanh(u_j)                       (rounded to -1, 0 or +1 when QUANTIZE)
//   logits_o = bo_o + sum_j Wo[j][o] * h'_j                    (readout)
// Parameters: one flat f32 array, W1 [K][C][F], b1 [F], W2 [F][C_H], b2 [C_H],
// Wo [C_H][C_OUT], bo [C_OUT]. Sums run in the same order as sead-core's portable kernels.

// ---- Pipeline-overridable constants: the model's shape, the boundary, the tile size.
override C_IN: u32;
override C_H: u32;
override F: u32;
override C_OUT: u32;
override DIMS: u32 = 1u;           // 1: a row, 3 neighbours; 2: a plane, 3x3 neighbours
override PERIODIC: bool = false;   // false: zero outside the grid; true: wrap around
override RESIDUAL: bool = false;   // false: h' = tanh(u); true: h' = tanh(h + u)
override QUANTIZE: bool = false;   // true: h' rounded by `ternary` (spec.quantize "ternary")
// sead_core::real::TERNARY_HALF, set by the host so the threshold has one definition.
override TERNARY_HALF: f32;
override TC: u32 = 32u;            // cells per workgroup tile (a multiple of 4)

override C: u32 = C_IN + C_H;
override K: u32 = select(3u, 9u, DIMS == 2u);
override NROWS: u32 = select(1u, 3u, DIMS == 2u);
override OFF_B1: u32 = K * C * F;
override OFF_W2: u32 = OFF_B1 + F;
override OFF_B2: u32 = OFF_W2 + F * C_H;
override OFF_WO: u32 = OFF_B2 + C_H;
override OFF_BO: u32 = OFF_WO + C_H * C_OUT;

// Threads per workgroup of the tiled kernels (32, 64, 128 or 256).
override WG: u32 = 128u;
// Threads per workgroup of the per-element kernels (a thread per sample, cell or value).
const WG_FLAT: u32 = 64u;

// ---- tanh: exactly sead_core::real::tanh_f32, the rational approximation (Eigen's float
// tanh) with exact +-1 beyond +-9 so saturated states are bit-stable. The coefficients are
// the same f32 values, written as hex floats so no decimal rounding can change them.
const TANH_CLAMP: f32 = 0x1.f9e4aap2f;     // 7.9045815
const TANH_SATURATE: f32 = 0x1.200000p3f;  // 9
const TANH_A1: f32 = 0x1.40b3b8p-8f;       // 4.8935246e-3
const TANH_A3: f32 = 0x1.4e1bdap-11f;      // 6.3726195e-4
const TANH_A5: f32 = 0x1.f28696p-17f;      // 1.4857224e-5
const TANH_A7: f32 = 0x1.b80080p-25f;      // 5.122297e-8
const TANH_A9: f32 = -0x1.7a6ffep-34f;     // -8.604672e-11
const TANH_A11: f32 = 0x1.c266fcp-43f;     // 2.000188e-13
const TANH_A13: f32 = -0x1.3e4b82p-52f;    // -2.7607686e-16
const TANH_B0: f32 = 0x1.40b3bap-8f;       // 4.893525e-3
const TANH_B2: f32 = 0x1.295408p-9f;       // 2.2684345e-3
const TANH_B4: f32 = 0x1.f12baap-14f;      // 1.185347e-4
const TANH_B6: f32 = 0x1.41a7b0p-20f;      // 1.1982584e-6

fn tanh_sead(v: f32) -> f32 {
    if (abs(v) >= TANH_SATURATE) {
        return select(-1.0, 1.0, v > 0.0);
    }
    let x = clamp(v, -TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    var p = x2 * TANH_A13 + TANH_A11;
    p = x2 * p + TANH_A9;
    p = x2 * p + TANH_A7;
    p = x2 * p + TANH_A5;
    p = x2 * p + TANH_A3;
    p = x2 * p + TANH_A1;
    p = p * x;
    var q = x2 * TANH_B6 + TANH_B4;
    q = x2 * q + TANH_B2;
    q = x2 * q + TANH_B0;
    return clamp(p / q, -1.0, 1.0);
}

// ---- The ternary quantizer: exactly sead_core::real::ternary (+1 above TERNARY_HALF, -1
// below -TERNARY_HALF, else 0; NaN gives 0). Counted in integers: Vulkan lets a compiler
// ignore the sign of a float zero, and on lavapipe the same rule written with float
// returns (1.0, -1.0, 0.0) gave some zeros as -0.0. The CPU's 0 is +0, and skipping with
// freeze 0 keeps a state bit for bit, so the two stepping paths then differed in sign bits.
fn ternary(t: f32) -> f32 {
    return f32(i32(t > TERNARY_HALF) - i32(t < -TERNARY_HALF));
}

// The new hidden value from tanh's output t: t, or t rounded when QUANTIZE.
fn quantize(t: f32) -> f32 {
    if (QUANTIZE) {
        return ternary(t);
    }
    return t;
}

// ---- Resources every module shares.
@group(0) @binding(0) var<storage, read> params: array<f32>;
// Clamped inputs, [cells][C_IN] (at least one element even when C_IN = 0).
@group(0) @binding(1) var<storage, read> xs: array<f32>;
// Hidden states, [...][cells][C_H]: two copies (inference) or one per step (training).
@group(0) @binding(2) var<storage, read_write> hs: array<f32>;

// The new hidden states of one tile, [TC][C_H] (for the readout after a step).
override H_LEN: u32 = TC * C_H;
var<workgroup> h_tile: array<f32, H_LEN>;

fn wrap(v: i32, n: u32) -> i32 {
    let m = i32(n);
    return ((v % m) + m) % m;
}

// Index of the linear workgroup when dispatches are folded into 2D.
fn linear_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Channel c of the neighbourhood cell at tile position i (0 .. TC + 1, the cell x0 + i - 1)
// of neighbourhood row r (row y + r - 1 in 2D) of one sample, boundary applied: 0 outside
// a zero-boundary grid. `h_base`: float offset in hs of the sample's cell 0; `x_cell`:
// index in xs (in cells) of the sample's cell 0.
fn tile_input(h_base: u32, x_cell: u32, width: u32, height: u32, y: u32, x0: u32, r: u32, i: u32, c: u32) -> f32 {
    var yy = i32(y);
    if (DIMS == 2u) {
        yy = yy + i32(r) - 1;
    }
    var xx = i32(x0 + i) - 1;
    if (PERIODIC) {
        yy = wrap(yy, height);
        xx = wrap(xx, width);
    } else if (yy < 0 || yy >= i32(height) || xx < 0 || xx >= i32(width)) {
        return 0.0;
    }
    let cell = u32(yy) * width + u32(xx);
    if (c < C_IN) {
        return xs[(x_cell + cell) * C_IN + c];
    }
    return hs[h_base + cell * C_H + (c - C_IN)];
}

// Where finish_channel keeps no unrounded tanh (inference, or an unquantized model).
const NO_SOFT: u32 = 0xffffffffu;

// tanh (and the quantizer), then writes channel j of the cell block ib (those below n_valid)
// to hs at `dst` (the tile's first cell) and to h_tile; returns the largest |h' - h|. With
// QUANTIZE and `soft` != NO_SOFT, the unrounded tanh also goes to hs at `soft` (the tile's
// first cell): training's backward takes tanh' from it (straight through the rounding).
fn finish_channel(u: vec4<f32>, h_old: vec4<f32>, j: u32, ib: u32, n_valid: u32, dst: u32, soft: u32) -> f32 {
    var dmax = 0.0;
    if (j >= C_H) {
        return dmax;
    }
    for (var q = 0u; q < 4u; q++) {
        let i = ib * 4u + q;
        if (i < n_valid) {
            let t = tanh_sead(u[q]);
            if (QUANTIZE && soft != NO_SOFT) {
                hs[soft + i * C_H + j] = t;
            }
            let h_new = quantize(t);
            hs[dst + i * C_H + j] = h_new;
            h_tile[i * C_H + j] = h_new;
            dmax = max(dmax, abs(h_new - h_old[q]));
        }
    }
    return dmax;
}

// Readout of hidden vector at hs[base ..]: logit o.
fn logit_at(base: u32, o: u32) -> f32 {
    var l = params[OFF_BO + o];
    for (var j = 0u; j < C_H; j++) {
        l = l + params[OFF_WO + j * C_OUT + o] * hs[base + j];
    }
    return l;
}

// Argmax of the logits of the hidden vector at hs[base ..] (the first on ties).
fn argmax_at(base: u32) -> u32 {
    var best = 0u;
    var best_v = logit_at(base, 0u);
    for (var o = 1u; o < C_OUT; o++) {
        let l = logit_at(base, o);
        if (l > best_v) {
            best = o;
            best_v = l;
        }
    }
    return best;
}
