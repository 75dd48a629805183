// sead: training (one batch: unroll T steps from h = 0, softmax cross-entropy at weighted
// steps, back-propagation through time, the gradient of every parameter). Appended to
// common.wgsl. The same math, in the same order of operations, as sead_core::train_step:
//
//   forward, t = 1 .. T:  train_noise(t)   I_t = S_{t-1} + noise_std * n, the noisy input of
//                                          step t, kept apart from the clean S_{t-1} (n is
//                                          uploaded: the CPU's NoiseStream values, so both
//                                          backends add the same noise)
//                         train_forward(t) S_t from I_t (S_{t-1} without noise), and the
//                                          features a_t; with QUANTIZE, S_t is rounded
//                                          and the unrounded tanh kept apart (U_t)
//                         train_loss(t)    per-cell cross-entropy (weighted steps) and,
//                                          at t = T, whether each cell is right
//   backward, t = T .. 1: train_dz(t)      d = scale (softmax - onehot) from the clean S_t,
//                                          gh += Wo d, dpre = gh (1 - h_t^2) (h_t from
//                                          U_t with QUANTIZE: straight through the
//                                          rounding, d round(t)/dt = 1, as on the CPU),
//                                          dz = [a_t > 0] W2 dpre
//                         train_dh(t)      gh = the gradient at I_t.h = at S_{t-1}.h: each cell
//                                          gathers W1 dz from the cells that read it
//                                          (+ dpre for the residual update)
//   parameters:           grad_outer(m)    one outer-product reduction per layer over all
//                                          (step, cell) rows, in fixed chunks:
//                                          [I_t(p+k), 1] x dz -> W1, b1;  [a, 1] x dpre ->
//                                          W2, b2;  [h, 1] x d -> Wo, bo (the flat
//                                          layout is exactly these three matrices)
//                         grad_sum         the chunks summed in order: deterministic
//
// Layouts ("nbc" = samples x cells of this chunk of the batch, n = (t-1) * nbc + cell):
//   hs     [2T+1][nbc][C_H]: S_0 .. S_T, then (with noise) I_1 .. I_T; with QUANTIZE
//          T more slots, U_1 .. U_T (slot 2T + t)
//   acts, dz [T][nbc][F]     dpre [T][nbc][C_H]
//   dlog   [T][nbc][C_OUT]   ce [T][nbc]   gh [nbc][C_H]
//   noise  [samples][T][cells][C_H] (each sample's stream in one block, made in parallel)

struct TrainInfo {
    width: u32,
    height: u32,
    cells: u32,             // cells per sample
    nb: u32,                // samples in this chunk
    nbc: u32,               // nb * cells
    tiles_per_row: u32,
    tiles_per_sample: u32,
    steps: u32,             // T
    noise_std: f32,
    n_total: u32,           // T * nbc rows of the gradient reductions
    nchunk: u32,            // rows per reduction chunk (a multiple of 16)
    n_chunks: u32,
    p: u32,                 // parameter count
    accumulate: u32,        // grad_sum: 1 = add to grad (later chunks of the batch)
    noisy: u32,             // 1: step t reads I_t (slot T + t of hs), else S_{t-1}
    _pad1: u32,
}

struct Rec {
    t: u32,                 // step (1 .. T)
    weight: f32,            // loss weight of step t
    scale: f32,             // weight / supervised cells
    last: u32,              // 1 at t = T
    mode: u32,              // grad_outer: 0 W1/b1, 1 W2/b2, 2 Wo/bo
    rows: u32,              // grad_outer: rows of the augmented input (+1 for the bias)
    cols: u32,
    off: u32,               // where the block starts in the flat gradient
    tiles_r: u32,
    tiles_c: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(3) var<storage, read_write> acts: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> dpre: array<f32>;
@group(0) @binding(6) var<storage, read_write> dlog: array<f32>;
@group(0) @binding(7) var<storage, read_write> gh: array<f32>;
@group(0) @binding(8) var<storage, read> targets: array<i32>;
@group(0) @binding(9) var<storage, read> noise: array<f32>;
@group(0) @binding(10) var<storage, read_write> ce: array<f32>;
@group(0) @binding(11) var<storage, read_write> correct: array<u32>;
@group(0) @binding(12) var<storage, read_write> partial: array<f32>;
@group(0) @binding(13) var<storage, read_write> grad: array<f32>;
@group(0) @binding(14) var<uniform> ti: TrainInfo;
@group(0) @binding(15) var<uniform> rec: Rec;

// The neighbourhood of one tile: NROWS rows of TC + 2 cells (the tile and one cell each
// side) of all C channels, boundary applied; then the tile's features and new states.
override S_LEN: u32 = NROWS * (TC + 2u) * C;
override A_LEN: u32 = TC * F;
var<workgroup> s_tile: array<f32, S_LEN>;
var<workgroup> a_tile: array<f32, A_LEN>;

// Loads the neighbourhood of cells x0 .. x0 + TC - 1 of row y of one sample into s_tile.
// `h_base`: float offset in hs of the sample's cell 0; `x_cell`: index in xs (in cells)
// of the sample's cell 0.
fn load_tile(h_base: u32, x_cell: u32, width: u32, height: u32, y: u32, x0: u32, lid: u32) {
    let n = NROWS * (TC + 2u) * C;
    for (var e = lid; e < n; e += WG) {
        let c = e % C;
        let rest = e / C;
        let i = rest % (TC + 2u);
        let r = rest / (TC + 2u);
        let v = tile_input(h_base, x_cell, width, height, y, x0, r, i, c);
        s_tile[e] = v;
    }
}

// Perceive + ReLU for the first n_valid cells of the tile: a_tile[i][f]. Each thread
// computes a block of 4 cells x 4 features, so per neighbourhood value 4 weight loads and
// 4 tile loads feed 16 multiply-adds. Each sum runs over neighbourhood rows, then each
// row's 3*C values, in the CPU's order.
fn perceive_tile(n_valid: u32, lid: u32) {
    let nblk = (n_valid + 3u) / 4u;
    let nfb = (F + 3u) / 4u;
    let seg = 3u * C;
    for (var e = lid; e < nblk * nfb; e += WG) {
        let f0 = (e % nfb) * 4u;
        let i0 = (e / nfb) * 4u;
        // Features past F (when F is not a multiple of 4) compute a copy of the last one
        // and are not stored.
        let fi = vec4<u32>(f0, min(f0 + 1u, F - 1u), min(f0 + 2u, F - 1u), min(f0 + 3u, F - 1u));
        let b = vec4<f32>(params[OFF_B1 + fi.x], params[OFF_B1 + fi.y], params[OFF_B1 + fi.z], params[OFF_B1 + fi.w]);
        var z0 = b;
        var z1 = b;
        var z2 = b;
        var z3 = b;
        for (var r = 0u; r < NROWS; r++) {
            let srow = (r * (TC + 2u) + i0) * C;
            let wrow = r * seg * F;
            for (var j = 0u; j < seg; j++) {
                let wj = wrow + j * F;
                let w = vec4<f32>(params[wj + fi.x], params[wj + fi.y], params[wj + fi.z], params[wj + fi.w]);
                let s = srow + j;
                z0 = z0 + s_tile[s] * w;
                z1 = z1 + s_tile[s + C] * w;
                z2 = z2 + s_tile[s + 2u * C] * w;
                z3 = z3 + s_tile[s + 3u * C] * w;
            }
        }
        z0 = max(z0, vec4<f32>(0.0));
        z1 = max(z1, vec4<f32>(0.0));
        z2 = max(z2, vec4<f32>(0.0));
        z3 = max(z3, vec4<f32>(0.0));
        for (var q = 0u; q < 4u; q++) {
            if (f0 + q < F) {
                let f = f0 + q;
                a_tile[i0 * F + f] = z0[q];
                a_tile[(i0 + 1u) * F + f] = z1[q];
                a_tile[(i0 + 2u) * F + f] = z2[q];
                a_tile[(i0 + 3u) * F + f] = z3[q];
            }
        }
    }
}

// Mix + update for the first n_valid cells: writes h' to hs at `dst` (float offset of the
// tile's first cell) and to h_tile, and with QUANTIZE the unrounded tanh at `soft`; returns
// this thread's largest |h' - h|. Each thread computes one hidden channel of 4 cells (one
// weight load per 4 multiply-adds).
fn mix_tile(n_valid: u32, lid: u32, dst: u32, soft: u32) -> f32 {
    var dmax = 0.0;
    let center = (NROWS / 2u) * (TC + 2u);
    let nblk = (n_valid + 3u) / 4u;
    for (var e = lid; e < nblk * C_H; e += WG) {
        let j = e % C_H;
        let i0 = (e / C_H) * 4u;
        let old = (center + i0 + 1u) * C + C_IN + j;
        let h_old = vec4<f32>(s_tile[old], s_tile[old + C], s_tile[old + 2u * C], s_tile[old + 3u * C]);
        var u = vec4<f32>(params[OFF_B2 + j]);
        if (RESIDUAL) {
            u = u + h_old;
        }
        for (var f = 0u; f < F; f++) {
            let a = vec4<f32>(a_tile[i0 * F + f], a_tile[(i0 + 1u) * F + f], a_tile[(i0 + 2u) * F + f], a_tile[(i0 + 3u) * F + f]);
            u = u + params[OFF_W2 + f * C_H + j] * a;
        }
        dmax = max(dmax, finish_channel(u, h_old, j, i0 / 4u, n_valid, dst, soft));
    }
    return dmax;
}

override D_LEN: u32 = TC * C_OUT;
var<workgroup> d_tile: array<f32, D_LEN>;

// Slot of hs that step t reads: the noisy input I_t, or S_{t-1} without noise.
fn input_slot(t: u32) -> u32 {
    return select(t - 1u, ti.steps + t, ti.noisy == 1u);
}

// Slot of hs that holds U_t, step t's unrounded tanh (QUANTIZE only).
fn soft_slot(t: u32) -> u32 {
    return 2u * ti.steps + t;
}

@compute @workgroup_size(WG_FLAT)
fn train_noise(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    let n = ti.nbc * C_H;
    if (idx >= n) {
        return;
    }
    let at = (rec.t - 1u) * n + idx;
    let per = ti.cells * C_H;
    let drawn = ((idx / per) * ti.steps + rec.t - 1u) * per + idx % per;
    hs[(ti.steps + rec.t) * n + idx] = hs[at] + ti.noise_std * noise[drawn];
}

@compute @workgroup_size(WG)
fn train_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wl = linear_workgroup(wid, nwg);
    if (wl >= ti.nb * ti.tiles_per_sample) {
        return;
    }
    let smp = wl / ti.tiles_per_sample;
    let tile = wl % ti.tiles_per_sample;
    let y = tile / ti.tiles_per_row;
    let x0 = (tile % ti.tiles_per_row) * TC;
    let width = ti.width;
    let state = ti.nbc * C_H;
    let cell0 = smp * ti.cells;
    load_tile(input_slot(rec.t) * state + cell0 * C_H, cell0, width, ti.height, y, x0, lid);
    workgroupBarrier();
    let n_valid = min(TC, width - x0);
    perceive_tile(n_valid, lid);
    workgroupBarrier();
    let first = cell0 + y * width + x0;
    let abase = ((rec.t - 1u) * ti.nbc + first) * F;
    for (var e = lid; e < n_valid * F; e += WG) {
        acts[abase + e] = a_tile[e];
    }
    let soft = select(NO_SOFT, soft_slot(rec.t) * state + first * C_H, QUANTIZE);
    _ = mix_tile(n_valid, lid, rec.t * state + first * C_H, soft);
}

@compute @workgroup_size(WG_FLAT)
fn train_loss(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    if (idx >= ti.nbc) {
        return;
    }
    let tg = targets[idx];
    if (tg < 0) {
        if (rec.last == 1u) {
            correct[idx] = 2u;
        }
        return;
    }
    let base = (rec.t * ti.nbc + idx) * C_H;
    var best = 0u;
    var m = logit_at(base, 0u);
    for (var o = 1u; o < C_OUT; o++) {
        let l = logit_at(base, o);
        if (l > m) {
            best = o;
            m = l;
        }
    }
    if (rec.weight > 0.0) {
        var sum = 0.0;
        for (var o = 0u; o < C_OUT; o++) {
            sum = sum + exp(logit_at(base, o) - m);
        }
        ce[(rec.t - 1u) * ti.nbc + idx] = m + log(sum) - logit_at(base, u32(tg));
    }
    if (rec.last == 1u) {
        correct[idx] = select(0u, 1u, best == u32(tg));
    }
}

@compute @workgroup_size(WG)
fn train_dz(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c0 = linear_workgroup(wid, nwg) * TC;
    if (c0 >= ti.nbc) {
        return;
    }
    let n_valid = min(TC, ti.nbc - c0);
    let row0 = (rec.t - 1u) * ti.nbc + c0;          // (step, cell) row of the tile's cell 0
    let hbase = (rec.t * ti.nbc + c0) * C_H;        // S_t of the tile's cell 0
    // d = scale * (softmax(logits(S_t)) - onehot) on supervised cells of weighted steps.
    for (var i = lid; i < n_valid; i += WG) {
        let tg = targets[c0 + i];
        let base = hbase + i * C_H;
        if (rec.weight > 0.0 && tg >= 0) {
            var m = logit_at(base, 0u);
            for (var o = 1u; o < C_OUT; o++) {
                m = max(m, logit_at(base, o));
            }
            var sum = 0.0;
            for (var o = 0u; o < C_OUT; o++) {
                sum = sum + exp(logit_at(base, o) - m);
            }
            for (var o = 0u; o < C_OUT; o++) {
                let pr = exp(logit_at(base, o) - m) / sum;
                let d = (pr - select(0.0, 1.0, o == u32(tg))) * rec.scale;
                d_tile[i * C_OUT + o] = d;
                dlog[(row0 + i) * C_OUT + o] = d;
            }
        } else {
            for (var o = 0u; o < C_OUT; o++) {
                d_tile[i * C_OUT + o] = 0.0;
                dlog[(row0 + i) * C_OUT + o] = 0.0;
            }
        }
    }
    workgroupBarrier();
    // dpre = (gh + Wo d) * (1 - h^2), h the tanh before rounding
    let sbase = (soft_slot(rec.t) * ti.nbc + c0) * C_H;
    for (var e = lid; e < n_valid * C_H; e += WG) {
        let j = e % C_H;
        let i = e / C_H;
        var acc = 0.0;
        for (var o = 0u; o < C_OUT; o++) {
            acc = acc + params[OFF_WO + j * C_OUT + o] * d_tile[i * C_OUT + o];
        }
        let g = gh[(c0 + i) * C_H + j] + acc;
        var h = hs[hbase + e];
        if (QUANTIZE) {
            h = hs[sbase + e];
        }
        let dp = g * (1.0 - h * h);
        h_tile[e] = dp;
        dpre[row0 * C_H + e] = dp;
    }
    workgroupBarrier();
    // dz = [a > 0] W2 dpre
    for (var e = lid; e < n_valid * F; e += WG) {
        let f = e % F;
        let i = e / F;
        let a = acts[row0 * F + e];
        var acc = 0.0;
        if (a > 0.0) {
            for (var j = 0u; j < C_H; j++) {
                acc = acc + params[OFF_W2 + f * C_H + j] * h_tile[i * C_H + j];
            }
        }
        dz[row0 * F + e] = acc;
    }
}

// Offset (dy, dx) of neighbour k, in the row-major order of docs/DESIGN.md ("The model").
fn offset_of(k: u32) -> vec2<i32> {
    if (DIMS == 2u) {
        return vec2<i32>(i32(k / 3u) - 1, i32(k % 3u) - 1);
    }
    return vec2<i32>(0, i32(k) - 1);
}

// Cell (y + d.x, x + d.y) of a sample with the boundary applied; -1 outside a zero grid.
fn neighbour(y: u32, x: u32, d: vec2<i32>) -> i32 {
    var yy = i32(y) + d.x;
    var xx = i32(x) + d.y;
    if (PERIODIC) {
        yy = wrap(yy, ti.height);
        xx = wrap(xx, ti.width);
    } else if (yy < 0 || yy >= i32(ti.height) || xx < 0 || xx >= i32(ti.width)) {
        return -1;
    }
    return yy * i32(ti.width) + xx;
}

// dz at step t of one tile's neighbourhood: NROWS rows of TC + 2 cells x F features, the
// boundary applied (0 outside a zero grid), as s_tile holds the states in the forward.
override Z_LEN: u32 = NROWS * (TC + 2u) * F;
var<workgroup> z_tile: array<f32, Z_LEN>;

// gh at S_{t-1}.h for the tile of train_forward's layout (one workgroup per tile of TC
// cells of a row): cell q's channel j gathers W1[k][C_IN + j] . dz(p) from each cell p
// that reads q through W1[k] (p = q - offset_k), then adds dpre for the residual update.
// Each thread computes 4 channels of 4 cells, as perceive_tile does features: per f, 4
// weight and 4 dz loads (from workgroup memory) feed 16 multiply-adds. Per (cell, channel)
// the sum runs over k, then f, in order.
@compute @workgroup_size(WG)
fn train_dh(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wl = linear_workgroup(wid, nwg);
    if (wl >= ti.nb * ti.tiles_per_sample) {
        return;
    }
    let smp = wl / ti.tiles_per_sample;
    let tile = wl % ti.tiles_per_sample;
    let y = tile / ti.tiles_per_row;
    let x0 = (tile % ti.tiles_per_row) * TC;
    let cell0 = smp * ti.cells;
    let rows = (rec.t - 1u) * ti.nbc;
    for (var e = lid; e < NROWS * (TC + 2u) * F; e += WG) {
        let f = e % F;
        let i = (e / F) % (TC + 2u);
        let r = e / (F * (TC + 2u));
        let dy = select(0, i32(r) - 1, DIMS == 2u);
        let p = neighbour(y, x0, vec2<i32>(dy, i32(i) - 1));
        var v = 0.0;
        if (p >= 0) {
            v = dz[(rows + cell0 + u32(p)) * F + f];
        }
        z_tile[e] = v;
    }
    workgroupBarrier();
    let n_valid = min(TC, ti.width - x0);
    let nblk = (n_valid + 3u) / 4u;
    let njb = (C_H + 3u) / 4u;
    for (var e = lid; e < nblk * njb; e += WG) {
        let j0 = (e % njb) * 4u;
        let i0 = (e / njb) * 4u;
        // Channels past C_H (when C_H is not a multiple of 4) compute a copy of the last one
        // and are not stored.
        let jj = vec4<u32>(j0, min(j0 + 1u, C_H - 1u), min(j0 + 2u, C_H - 1u), min(j0 + 3u, C_H - 1u));
        var g0 = vec4<f32>(0.0);   // channel jj.x of the 4 cells, and so on
        var g1 = vec4<f32>(0.0);
        var g2 = vec4<f32>(0.0);
        var g3 = vec4<f32>(0.0);
        for (var k = 0u; k < K; k++) {
            // p = q - offset_k: tile row 1 - dy (2D), position i + 1 - dx.
            let d = offset_of(k);
            let r = select(0u, u32(1 - d.x), DIMS == 2u);
            let zb = (r * (TC + 2u) + i0 + u32(1 - d.y)) * F;
            let wb = (k * C + C_IN) * F;
            for (var f = 0u; f < F; f++) {
                let z = vec4<f32>(z_tile[zb + f], z_tile[zb + F + f], z_tile[zb + 2u * F + f], z_tile[zb + 3u * F + f]);
                g0 = g0 + params[wb + jj.x * F + f] * z;
                g1 = g1 + params[wb + jj.y * F + f] * z;
                g2 = g2 + params[wb + jj.z * F + f] * z;
                g3 = g3 + params[wb + jj.w * F + f] * z;
            }
        }
        for (var q = 0u; q < 4u; q++) {
            let i = i0 + q;
            if (i < n_valid) {
                let cell = cell0 + y * ti.width + x0 + i;
                let g = vec4<f32>(g0[q], g1[q], g2[q], g3[q]);
                for (var c = 0u; c < 4u; c++) {
                    let j = j0 + c;
                    if (j < C_H) {
                        var v = g[c];
                        if (RESIDUAL) {
                            v = v + dpre[(rows + cell) * C_H + j];
                        }
                        gh[cell * C_H + j] = v;
                    }
                }
            }
        }
    }
}

// Row r of the augmented input of layer `mode` at (step, cell) row n.
fn load_a(mode: u32, n: u32, r: u32) -> f32 {
    if (mode == 0u) {
        if (r == K * C) {
            return 1.0;
        }
        let cell = n % ti.nbc;
        let t0 = n / ti.nbc;                     // step t = t0 + 1 read I_t
        let smp = cell / ti.cells;
        let pos = cell % ti.cells;
        let k = r / C;
        let c = r % C;
        let p = neighbour(pos / ti.width, pos % ti.width, offset_of(k));
        if (p < 0) {
            return 0.0;
        }
        let q = smp * ti.cells + u32(p);
        if (c < C_IN) {
            return xs[q * C_IN + c];
        }
        return hs[(input_slot(t0 + 1u) * ti.nbc + q) * C_H + (c - C_IN)];
    }
    if (mode == 1u) {
        if (r == F) {
            return 1.0;
        }
        return acts[n * F + r];
    }
    if (r == C_H) {
        return 1.0;
    }
    return hs[(n + ti.nbc) * C_H + r];           // S_t, t = n / nbc + 1
}

// Column c of the output gradient of layer `mode` at row n.
fn load_b(mode: u32, n: u32, c: u32) -> f32 {
    if (mode == 0u) {
        return dz[n * F + c];
    }
    if (mode == 1u) {
        return dpre[n * C_H + c];
    }
    return dlog[n * C_OUT + c];
}

// grad_outer's output tile, GR x GC values, 4 x 4 per thread: shaped per layer by the host
// (outer_tile in src/train.rs) so that a narrow layer (W2: F+1 x C_H, Wo: C_H+1 x C_OUT) is not
// padded to 64 x 64. The sums are the same whatever the tile: each value runs over the
// chunk's rows in order.
override GR: u32 = 64u;
override GC: u32 = 64u;
override GWG: u32 = (GR / 4u) * (GC / 4u);
const GB: u32 = 16u;   // rows per shared-memory block
override GA_LEN: u32 = GB * GR;
override GB_LEN: u32 = GB * GC;
var<workgroup> ga: array<f32, GA_LEN>;   // [GB][GR]
var<workgroup> gb: array<f32, GB_LEN>;   // [GB][GC]

@compute @workgroup_size(GWG)
fn grad_outer(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tiles = rec.tiles_r * rec.tiles_c;
    let wl = linear_workgroup(wid, nwg);
    if (wl >= tiles * ti.n_chunks) {
        return;
    }
    let chunk = wl / tiles;
    let tile = wl % tiles;
    let r0 = (tile / rec.tiles_c) * GR;
    let q0 = (tile % rec.tiles_c) * GC;
    let n0 = chunk * ti.nchunk;
    let n1 = min(n0 + ti.nchunk, ti.n_total);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let ty = (lid / (GC / 4u)) * 4u;
    let tx = (lid % (GC / 4u)) * 4u;
    for (var nb = n0; nb < n1; nb += GB) {
        for (var e = lid; e < GB * GR; e += GWG) {
            let nn = nb + e / GR;
            let rr = r0 + e % GR;
            var av = 0.0;
            if (nn < n1 && rr < rec.rows) {
                av = load_a(rec.mode, nn, rr);
            }
            ga[e] = av;
        }
        for (var e = lid; e < GB * GC; e += GWG) {
            let nn = nb + e / GC;
            let cc = q0 + e % GC;
            var bv = 0.0;
            if (nn < n1 && cc < rec.cols) {
                bv = load_b(rec.mode, nn, cc);
            }
            gb[e] = bv;
        }
        workgroupBarrier();
        for (var k = 0u; k < GB; k++) {
            let a = vec4<f32>(ga[k * GR + ty], ga[k * GR + ty + 1u], ga[k * GR + ty + 2u], ga[k * GR + ty + 3u]);
            let b = vec4<f32>(gb[k * GC + tx], gb[k * GC + tx + 1u], gb[k * GC + tx + 2u], gb[k * GC + tx + 3u]);
            acc0 = acc0 + a.x * b;
            acc1 = acc1 + a.y * b;
            acc2 = acc2 + a.z * b;
            acc3 = acc3 + a.w * b;
        }
        workgroupBarrier();
    }
    let base = chunk * ti.p + rec.off;
    for (var i = 0u; i < 4u; i++) {
        let r = r0 + ty + i;
        if (r >= rec.rows) {
            break;
        }
        var v = acc0;
        if (i == 1u) { v = acc1; }
        if (i == 2u) { v = acc2; }
        if (i == 3u) { v = acc3; }
        for (var jj = 0u; jj < 4u; jj++) {
            let cc = q0 + tx + jj;
            if (cc < rec.cols) {
                partial[base + r * rec.cols + cc] = v[jj];
            }
        }
    }
}

@compute @workgroup_size(WG_FLAT)
fn grad_sum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    if (i >= ti.p) {
        return;
    }
    var acc = 0.0;
    if (ti.accumulate == 1u) {
        acc = grad[i];
    }
    for (var c = 0u; c < ti.n_chunks; c++) {
        acc = acc + partial[c * ti.p + i];
    }
    grad[i] = acc;
}
