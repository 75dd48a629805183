// sead: inference. Appended to common.wgsl.
//
// step_forward     one step of a group of samples: perceive, mix, tanh (rounded when
//                  QUANTIZE), readout, and the per-sample change statistics (max
//                  |h' - h|, outputs changed). Laid out for throughput: the tile's
//                  neighbourhood is unrolled (im2col) and stored transposed, so each
//                  thread's 4 cells are one vec4 load, and the
//                  weights come packed as vec4s (`wpack`); a thread computes 4 cells x 8
//                  features per perceive step (3 loads per 32 multiply-adds) and 4 cells x
//                  4 channels in the mix. Sums run in the CPU's order.
// step_packed      the same step for short 1D rows laid end to end, so one tile holds
//                  cells of several samples (a 17-cell row would fill 17 of a pair of
//                  16-cell tiles); each cell's arithmetic is step_forward's
// sample_update    after each step, per sample: its clock, and in converge mode the
//                  settle test (patience, tol, step budget), so many steps run per
//                  submission and a settled sample stops at exactly the step the CPU
//                  backend stops it
// readout_outputs  recomputes every cell's argmax output from its hidden state
//
// Settled-tile skipping (FREEZE >= 0, 1D and 2D; the GPU form of sead-core's `freeze`): a
// cell whose every hidden channel would move by at most FREEZE keeps its state (its output
// is the readout of the state it keeps, as for every computed cell), and a tile none of
// whose cells, nor those of the tiles its cells' neighbourhoods reach, changed in the
// sample's last step is not computed: it would compute what it computed then and commit
// nothing. Those tiles are, in 1D, its two neighbour tiles in the row; in 2D, the tiles of
// rows y - 1, y and y + 1 that overlap its columns widened by one cell (wrapping on a
// periodic boundary): up to 9 tiles. Its copy in the buffer being written already holds
// its state (written two steps ago, and the tile has not changed since), so the double
// buffer stays right without a copy. `tile_still` says, per copy of h, which tiles did not
// change in the step that made that copy; the host clears it (every tile unknown) whenever
// that knowledge is lost. Skipped tiles cost a thread each, not a workgroup: before each
// step `queue_tiles` (a thread per tile) lists the tiles to compute and counts them into the
// size of the indirect dispatch of `step_forward`, which computes the listed tiles only.
//
// A session's samples are split into groups whose buffers fit the device's binding limit.
// hs holds two copies of the group's hidden state; a sample's current copy is its clock's
// parity (the clock counts its steps), so samples can step different numbers of times.

struct GroupInfo {
    width: u32,
    height: u32,
    cells: u32,             // cells per sample
    tiles_per_row: u32,
    tiles_per_sample: u32,
    n_active: u32,          // entries of `active_list` used by this window
    group_start: u32,       // global index of the group's first sample
    group_len: u32,         // samples in the group
    half: u32,              // floats in one copy of the group's hidden state
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct SampleState {
    live: u32,              // 1: steps in this call
    clock: u32,             // parity of the current copy of h = clock & 1
    taken: u32,             // steps taken in this call
    quiet: u32,             // steps in a row with no output change
    budget: u32,            // steps this call may take (maxSteps - steps so far)
    converged: u32,
    last_delta: f32,        // the last step's max |h' - h|
    last_changed: u32,      // the last step's changed outputs
    computed_lo: u32,       // cell updates computed in this call (FREEZE >= 0), low word
    computed_hi: u32,       // and high word
}

struct Slot {
    slot: u32,              // which row of the stats buffer this step writes
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct ConvInfo {
    batch: u32,
    mode: u32,              // 0: plain steps; 1: converge
    patience: u32,
    tol: f32,
}

// [group cells]: argmax output per cell.
@group(0) @binding(3) var<storage, read_write> outs: array<u32>;
@group(0) @binding(4) var<storage, read_write> samples: array<SampleState>;
// [slot][batch][STAT_WORDS]: bits of max |h' - h| (non-negative floats order as their
// bits), the count of changed outputs, and (FREEZE >= 0) the cells computed. Cleared at the
// start of every window of steps.
@group(0) @binding(5) var<storage, read_write> stats: array<atomic<u32>>;
// Group-local indices of the samples this window steps.
@group(0) @binding(6) var<storage, read> active_list: array<u32>;
@group(0) @binding(7) var<uniform> info: GroupInfo;
@group(0) @binding(8) var<uniform> slot: Slot;
@group(0) @binding(9) var<uniform> conv: ConvInfo;

// The weights re-laid for step_forward by the host (`pack_step_weights`), as vec4s: W1
// [K*C][F8] (each row padded with zeros to F8 features), then W2 [F][CH4] (rows padded
// to CH4 channels).
@group(0) @binding(10) var<storage, read> wpack: array<vec4<f32>>;
// [2][group samples][tiles_per_sample]: 1 when no cell of the tile changed in the step
// that made that copy of the sample's h; 0 when one did, or it is not known.
@group(0) @binding(11) var<storage, read_write> tile_still: array<u32>;
// With FREEZE >= 0: [QUEUE_COUNT_AT + s] the count of tiles listed for a step of parity s
// (the step's index in the window & 1), and from QUEUE_AT the list of tiles to compute
// (active index x tiles_per_sample + tile).
@group(0) @binding(12) var<storage, read_write> tile_queue: array<atomic<u32>>;
const QUEUE_COUNT_AT: u32 = 4u;
const QUEUE_AT: u32 = 8u;
// The indirect dispatch size of step_forward for a step of parity s at [DISPATCH_WORDS s ..]:
// x, y, z (and a word of padding). y (the rows the dispatch is folded into, enough for every
// tile of the group within the cap workgroups per row) and z = 1 are the host's; queue_tiles
// counts x. Its own buffer: one dispatch cannot use a buffer both as its size and as a
// writable binding.
@group(0) @binding(13) var<storage, read_write> tile_dispatch: array<atomic<u32>>;
const DISPATCH_WORDS: u32 = 4u;

// Settled-tile skipping: the largest move (in every hidden channel) that a cell does not
// commit. Negative: off, and the branches below compile away.
override FREEZE: f32 = -1.0;

const STAT_WORDS: u32 = 3u;

override F8: u32 = ((F + 7u) / 8u) * 8u;
override CH4: u32 = ((C_H + 3u) / 4u) * 4u;
override KC: u32 = K * C;                 // W1's rows: neighbourhood values per cell
override TC4: u32 = TC / 4u;
override OFF_W2P: u32 = KC * F8 / 4u;     // W2's first vec4 in wpack
override SIM_LEN: u32 = KC * TC4;
override AT_LEN: u32 = F * TC4;

// The tile's neighbourhood, unrolled and transposed: s_im[j][i / 4][i % 4] is value j
// (W1's row order: neighbourhood row, neighbour, channel) of the tile's cell i.
var<workgroup> s_im: array<vec4<f32>, SIM_LEN>;
// The tile's features, transposed: a_t[f][i / 4][i % 4].
var<workgroup> a_t: array<vec4<f32>, AT_LEN>;
// Per thread (step_forward's reductions) or per cell (step_packed's).
override RED_LEN: u32 = max(WG, TC);
var<workgroup> red_f: array<f32, RED_LEN>;
var<workgroup> red_u: array<u32, RED_LEN>;
var<workgroup> wg_flag: u32;
// With FREEZE >= 0: the listed tile this workgroup computes, or NO_TILE.
var<workgroup> wg_tile: u32;
const NO_TILE: u32 = 0xffffffffu;

// Fills s_im for the tile of cells x0 .. x0 + TC - 1 of row y: each thread builds whole
// vec4s (value j of 4 neighbouring cells) from 4 reads (L1 hits after the first: the tile
// and its halo are a few KiB), so no store writes a single vector component.
fn load_im2col(h_base: u32, x_cell: u32, width: u32, height: u32, y: u32, x0: u32, lid: u32) {
    for (var e = lid; e < SIM_LEN; e += WG) {
        let tb = e % TC4;
        let j = e / TC4;
        let c = j % C;
        let kx = (j / C) % 3u;
        let r = j / (3u * C);
        // Cell t of the tile sees tile position t + kx (the cell x0 + t + kx - 1).
        let i = tb * 4u + kx;
        s_im[e] = vec4<f32>(
            tile_input(h_base, x_cell, width, height, y, x0, r, i, c),
            tile_input(h_base, x_cell, width, height, y, x0, r, i + 1u, c),
            tile_input(h_base, x_cell, width, height, y, x0, r, i + 2u, c),
            tile_input(h_base, x_cell, width, height, y, x0, r, i + 3u, c),
        );
    }
}

// ReLU, then features f0 .. f0 + 3 of cell block ib into a_t (features past F are
// padding and are not stored).
fn store_features(z0: vec4<f32>, z1: vec4<f32>, z2: vec4<f32>, z3: vec4<f32>, f0: u32, ib: u32) {
    store_feature(z0, f0, ib);
    store_feature(z1, f0 + 1u, ib);
    store_feature(z2, f0 + 2u, ib);
    store_feature(z3, f0 + 3u, ib);
}

fn store_feature(z: vec4<f32>, f: u32, ib: u32) {
    if (f < F) {
        a_t[f * TC4 + ib] = max(z, vec4<f32>(0.0));
    }
}

fn bias1(f: u32) -> f32 {
    return select(0.0, params[OFF_B1 + min(f, F - 1u)], f < F);
}

// Perceive + ReLU: a_t for every cell block of the tile. Thread block: 4 cells x 8 features.
fn perceive_im2col(n_blocks: u32, lid: u32) {
    let nfb = F8 / 8u;
    for (var e = lid; e < n_blocks * nfb; e += WG) {
        let fb = e % nfb;
        let ib = e / nfb;
        let f0 = fb * 8u;
        var z0 = vec4<f32>(bias1(f0));
        var z1 = vec4<f32>(bias1(f0 + 1u));
        var z2 = vec4<f32>(bias1(f0 + 2u));
        var z3 = vec4<f32>(bias1(f0 + 3u));
        var z4 = vec4<f32>(bias1(f0 + 4u));
        var z5 = vec4<f32>(bias1(f0 + 5u));
        var z6 = vec4<f32>(bias1(f0 + 6u));
        var z7 = vec4<f32>(bias1(f0 + 7u));
        var w = fb * 2u;
        for (var j = 0u; j < KC; j++) {
            let s = s_im[j * TC4 + ib];
            let wa = wpack[w];
            let wb = wpack[w + 1u];
            w += F8 / 4u;
            z0 = z0 + s * wa.x;
            z1 = z1 + s * wa.y;
            z2 = z2 + s * wa.z;
            z3 = z3 + s * wa.w;
            z4 = z4 + s * wb.x;
            z5 = z5 + s * wb.y;
            z6 = z6 + s * wb.z;
            z7 = z7 + s * wb.w;
        }
        store_features(z0, z1, z2, z3, f0, ib);
        store_features(z4, z5, z6, z7, f0 + 4u, ib);
    }
}

// The old value of hidden channel j (clamped to C_H - 1: padding) of cell block ib.
fn h_before(j: u32, ib: u32) -> vec4<f32> {
    let centre = ((NROWS / 2u) * 3u + 1u) * C + C_IN;
    return s_im[(centre + min(j, C_H - 1u)) * TC4 + ib];
}

// Mix + update: h' for the first n_valid cells. Thread block: 4 cells x 4 channels.
fn mix_im2col(n_valid: u32, lid: u32, dst: u32) -> f32 {
    var dmax = 0.0;
    let n_blocks = (n_valid + 3u) / 4u;
    let njb = CH4 / 4u;
    for (var e = lid; e < n_blocks * njb; e += WG) {
        let jb = e % njb;
        let ib = e / njb;
        let j0 = jb * 4u;
        let h0 = h_before(j0, ib);
        let h1 = h_before(j0 + 1u, ib);
        let h2 = h_before(j0 + 2u, ib);
        let h3 = h_before(j0 + 3u, ib);
        var u0 = vec4<f32>(params[OFF_B2 + min(j0, C_H - 1u)]);
        var u1 = vec4<f32>(params[OFF_B2 + min(j0 + 1u, C_H - 1u)]);
        var u2 = vec4<f32>(params[OFF_B2 + min(j0 + 2u, C_H - 1u)]);
        var u3 = vec4<f32>(params[OFF_B2 + min(j0 + 3u, C_H - 1u)]);
        if (RESIDUAL) {
            u0 = u0 + h0;
            u1 = u1 + h1;
            u2 = u2 + h2;
            u3 = u3 + h3;
        }
        var w = OFF_W2P + jb;
        for (var f = 0u; f < F; f++) {
            let a = a_t[f * TC4 + ib];
            let wv = wpack[w];
            w += CH4 / 4u;
            u0 = u0 + a * wv.x;
            u1 = u1 + a * wv.y;
            u2 = u2 + a * wv.z;
            u3 = u3 + a * wv.w;
        }
        if (PACKED) {
            keep_channel(u0, j0, ib, n_valid);
            keep_channel(u1, j0 + 1u, ib, n_valid);
            keep_channel(u2, j0 + 2u, ib, n_valid);
            keep_channel(u3, j0 + 3u, ib, n_valid);
        } else {
            dmax = max(dmax, finish_channel(u0, h0, j0, ib, n_valid, dst, NO_SOFT));
            dmax = max(dmax, finish_channel(u1, h1, j0 + 1u, ib, n_valid, dst, NO_SOFT));
            dmax = max(dmax, finish_channel(u2, h2, j0 + 2u, ib, n_valid, dst, NO_SOFT));
            dmax = max(dmax, finish_channel(u3, h3, j0 + 3u, ib, n_valid, dst, NO_SOFT));
        }
    }
    return dmax;
}

// With PACKED: tanh (and the quantizer), then channel j of the cell block ib (those below n_valid) into h_tile
// only; `step_packed` writes each cell where its sample keeps it.
fn keep_channel(u: vec4<f32>, j: u32, ib: u32, n_valid: u32) {
    if (j >= C_H) {
        return;
    }
    for (var q = 0u; q < 4u; q++) {
        let i = ib * 4u + q;
        if (i < n_valid) {
            h_tile[i * C_H + j] = quantize(tanh_sead(u[q]));
        }
    }
}

// The argmax output of the tile's cell i from its new state in h_tile (the first on ties).
fn tile_argmax(i: u32) -> u32 {
    var best = 0u;
    var best_v = 0.0;
    for (var o = 0u; o < C_OUT; o++) {
        var l = params[OFF_BO + o];
        for (var j = 0u; j < C_H; j++) {
            l = l + params[OFF_WO + j * C_OUT + o] * h_tile[i * C_H + j];
        }
        if (o == 0u || l > best_v) {
            best = o;
            best_v = l;
        }
    }
    return best;
}

@compute @workgroup_size(WG)
fn step_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var wl = linear_workgroup(wid, nwg);
    if (FREEZE >= 0.0) {
        // The workgroup computes the wl-th tile of the list `queue_tiles` made for this step;
        // the dispatch is folded into 2D, so a few workgroups lie past the list.
        if (lid == 0u) {
            let listed = atomicLoad(&tile_queue[QUEUE_COUNT_AT + (slot.slot & 1u)]);
            wg_tile = select(NO_TILE, atomicLoad(&tile_queue[QUEUE_AT + wl]), wl < listed);
        }
        wl = workgroupUniformLoad(&wg_tile);
        if (wl == NO_TILE) {
            return;
        }
    }
    let a = wl / info.tiles_per_sample;
    if (a >= info.n_active) {
        return;
    }
    let loc = active_list[a];
    let b = info.group_start + loc;
    if (lid == 0u) {
        wg_flag = samples[b].live;
    }
    if (workgroupUniformLoad(&wg_flag) == 0u) {
        return;   // settled earlier in this window: costs one early exit
    }
    let par = samples[b].clock & 1u;
    let tile = wl % info.tiles_per_sample;
    let y = tile / info.tiles_per_row;
    let x0 = (tile % info.tiles_per_row) * TC;
    let width = info.width;
    let cell0 = loc * info.cells;          // the sample's first cell in the group
    let src = par * info.half + cell0 * C_H;
    let dst = (1u - par) * info.half + cell0 * C_H;
    load_im2col(src, cell0, width, info.height, y, x0, lid);
    workgroupBarrier();
    let n_valid = min(TC, width - x0);
    perceive_im2col((n_valid + 3u) / 4u, lid);
    workgroupBarrier();
    let first = y * width + x0;               // the tile's first cell in the sample
    var dmax = mix_im2col(n_valid, lid, dst + first * C_H);
    workgroupBarrier();
    if (FREEZE >= 0.0) {
        dmax = commit_moved_cells(n_valid, lid, dst + first * C_H);
        workgroupBarrier();
    }
    var changed = 0u;
    for (var i = lid; i < n_valid; i += WG) {
        let best = tile_argmax(i);
        let cell = cell0 + first + i;
        if (outs[cell] != best) {
            outs[cell] = best;
            changed += 1u;
        }
    }
    red_f[lid] = dmax;
    red_u[lid] = changed;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_f[lid] = max(red_f[lid], red_f[lid + s]);
            red_u[lid] = red_u[lid] + red_u[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let k = (slot.slot * conv.batch + b) * STAT_WORDS;
        if (red_f[0] > 0.0) {
            atomicMax(&stats[k], bitcast<u32>(red_f[0]));
        }
        if (red_u[0] > 0u) {
            atomicAdd(&stats[k + 1u], red_u[0]);
        }
        if (FREEZE >= 0.0) {
            atomicAdd(&stats[k + 2u], n_valid);
            // Only committed cells count in red_f, and each moved by more than FREEZE.
            let next = ((1u - par) * info.group_len + loc) * info.tiles_per_sample;
            tile_still[next + tile] = u32(red_f[0] <= FREEZE);
        }
    }
}

// ---- Packed short rows (`step_packed`, 1D, without skipping). A tile is TC consecutive
// cells of the window's active samples laid end to end (sample a's cell x is cell
// a * width + x), so a 17-cell row no longer takes two 16-cell tiles, one of them with a
// single cell. Each cell reads its neighbours in its own sample (boundary applied), is
// written to its own sample's next copy of h, and counts in its own sample's statistics.
// The arithmetic of each cell is that of step_forward, so both give the same bits.
override PACKED: bool = false;
const NO_CELL: u32 = 0xffffffffu;
// Per cell of the tile: its sample (global index; NO_CELL past the window's cells), the
// float offset in hs of its row in the sample's current copy, the row's first cell in xs,
// its position in the row, and where its new state goes (NO_CELL: the sample is not
// stepping).
var<workgroup> pk_sample: array<u32, TC>;
var<workgroup> pk_h: array<u32, TC>;
var<workgroup> pk_x: array<u32, TC>;
var<workgroup> pk_pos: array<u32, TC>;
var<workgroup> pk_dst: array<u32, TC>;

// Channel c of the neighbour kx (0: left, 1: the cell, 2: right) of the tile's cell t.
fn packed_input(t: u32, kx: u32, c: u32) -> f32 {
    if (pk_sample[t] == NO_CELL) {
        return 0.0;
    }
    var xx = i32(pk_pos[t] + kx) - 1;
    if (PERIODIC) {
        xx = wrap(xx, info.width);
    } else if (xx < 0 || xx >= i32(info.width)) {
        return 0.0;
    }
    if (c < C_IN) {
        return xs[(pk_x[t] + u32(xx)) * C_IN + c];
    }
    return hs[pk_h[t] + u32(xx) * C_H + (c - C_IN)];
}

@compute @workgroup_size(WG)
fn step_packed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let width = info.width;
    let total = info.n_active * width;
    let first = linear_workgroup(wid, nwg) * TC;   // the tile's first cell, end to end
    if (first >= total) {
        return;
    }
    let n_valid = min(TC, total - first);
    // The tile's samples are active indices first / width ..= last / width; skip the tile
    // when all of them settled earlier in this window.
    if (lid == 0u) {
        var any = 0u;
        for (var a = first / width; a <= (first + n_valid - 1u) / width; a++) {
            any |= samples[info.group_start + active_list[a]].live;
        }
        wg_flag = any;
    }
    if (workgroupUniformLoad(&wg_flag) == 0u) {
        return;
    }
    for (var t = lid; t < TC; t += WG) {
        pk_sample[t] = NO_CELL;
        pk_dst[t] = NO_CELL;
        if (t < n_valid) {
            let e = first + t;
            let loc = active_list[e / width];
            let b = info.group_start + loc;
            let par = samples[b].clock & 1u;
            let x = e % width;
            let row = loc * info.cells;
            pk_sample[t] = b;
            pk_h[t] = par * info.half + row * C_H;
            pk_x[t] = row;
            pk_pos[t] = x;
            if (samples[b].live != 0u) {
                pk_dst[t] = (1u - par) * info.half + (row + x) * C_H;
            }
        }
    }
    workgroupBarrier();
    for (var e = lid; e < SIM_LEN; e += WG) {
        let tb = e % TC4;
        let j = e / TC4;
        let c = j % C;
        let kx = j / C;
        let t = tb * 4u;
        s_im[e] = vec4<f32>(
            packed_input(t, kx, c),
            packed_input(t + 1u, kx, c),
            packed_input(t + 2u, kx, c),
            packed_input(t + 3u, kx, c),
        );
    }
    workgroupBarrier();
    perceive_im2col((n_valid + 3u) / 4u, lid);
    workgroupBarrier();
    _ = mix_im2col(n_valid, lid, 0u);
    workgroupBarrier();
    // The new states, each to its sample's next copy (consecutive threads write
    // consecutive floats of a cell).
    for (var e = lid; e < n_valid * C_H; e += WG) {
        let d = pk_dst[e / C_H];
        if (d != NO_CELL) {
            hs[d + e % C_H] = h_tile[e];
        }
    }
    // Per cell: its largest move and whether its output changed.
    for (var i = lid; i < n_valid; i += WG) {
        var moved = 0.0;
        var changed = 0u;
        if (pk_dst[i] != NO_CELL) {
            for (var j = 0u; j < C_H; j++) {
                moved = max(moved, abs(h_tile[i * C_H + j] - h_before(j, i / 4u)[i % 4u]));
            }
            let best = tile_argmax(i);
            let cell = pk_x[i] + pk_pos[i];
            if (outs[cell] != best) {
                outs[cell] = best;
                changed = 1u;
            }
        }
        red_f[i] = moved;
        red_u[i] = changed;
    }
    workgroupBarrier();
    // Per sample: the first of its cells in the tile sums them into its statistics.
    for (var i = lid; i < n_valid; i += WG) {
        let b = pk_sample[i];
        if (pk_dst[i] != NO_CELL && (i == 0u || pk_sample[i - 1u] != b)) {
            var md = 0.0;
            var ch = 0u;
            for (var k = i; k < n_valid && pk_sample[k] == b; k++) {
                md = max(md, red_f[k]);
                ch += red_u[k];
            }
            let at = (slot.slot * conv.batch + b) * STAT_WORDS;
            if (md > 0.0) {
                atomicMax(&stats[at], bitcast<u32>(md));
            }
            if (ch > 0u) {
                atomicAdd(&stats[at + 1u], ch);
            }
        }
    }
}

// Whether the tiles left and right of tile tx (around the row's ends on a periodic
// boundary; tx itself at a zero boundary's ends) had no change, in the row of n tiles that
// starts at `at` in tile_still. A cell's neighbourhood reaches one cell into each neighbour
// tile. (The callers read tile tx itself.)
fn row_still(at: u32, tx: u32, n: u32) -> bool {
    var left = tx;
    var right = tx;
    if (tx > 0u) {
        left = tx - 1u;
    } else if (PERIODIC) {
        left = n - 1u;
    }
    if (tx + 1u < n) {
        right = tx + 1u;
    } else if (PERIODIC) {
        right = 0u;
    }
    return tile_still[at + left] == 1u && tile_still[at + right] == 1u;
}

// Whether tile `tile` and every tile its cells' neighbourhoods reach all had no change in
// the step that made the current copy (`tile_still` at `now`). 1D: the tile and the tiles
// left and right of it. 2D (3x3 neighbourhood): those in its own row and in the rows above
// and below it (around the grid's top and bottom edges on a periodic boundary; at a zero
// boundary's edge there is no row to read).
fn neighbourhood_still(now: u32, tile: u32) -> bool {
    if (tile_still[now + tile] == 0u) {
        return false;
    }
    if (DIMS == 1u) {
        return row_still(now, tile, info.tiles_per_sample);
    }
    let n = info.tiles_per_row;
    let y = tile / n;
    let tx = tile % n;
    if (!row_still(now + y * n, tx, n)) {
        return false;
    }
    let h = info.height;
    var up = y;
    var down = y;
    if (y > 0u) {
        up = y - 1u;
    } else if (PERIODIC) {
        up = h - 1u;
    }
    if (y + 1u < h) {
        down = y + 1u;
    } else if (PERIODIC) {
        down = 0u;
    }
    return tile_still[now + up * n + tx] == 1u && row_still(now + up * n, tx, n)
        && tile_still[now + down * n + tx] == 1u && row_still(now + down * n, tx, n);
}

// With FREEZE >= 0, after the mix: a cell that moved by at most FREEZE in every channel
// gets its old state back (in hs at `dst`, the tile's first cell, and in h_tile); the
// others commit. Returns the largest move committed by this thread's cells.
fn commit_moved_cells(n_valid: u32, lid: u32, dst: u32) -> f32 {
    var dmax = 0.0;
    for (var i = lid; i < n_valid; i += WG) {
        var moved = 0.0;
        for (var j = 0u; j < C_H; j++) {
            let old = h_before(j, i / 4u)[i % 4u];
            moved = max(moved, abs(h_tile[i * C_H + j] - old));
        }
        if (moved > FREEZE) {
            dmax = max(dmax, moved);
        } else {
            for (var j = 0u; j < C_H; j++) {
                let old = h_before(j, i / 4u)[i % 4u];
                h_tile[i * C_H + j] = old;
                hs[dst + i * C_H + j] = old;
            }
        }
    }
    return dmax;
}

// With FREEZE >= 0, before each step_forward: one thread per tile of each active sample.
// A tile whose neighbourhood did not change in the sample's last step is marked still for
// the next copy (computing it would commit nothing); the others are listed for step_forward,
// whose dispatch gets one more workgroup per row each time the list passes a multiple of
// the rows: x = ceil(listed / y). (A separate one-thread dispatch used to write the size
// from the count: on lavapipe it was 12% of a carry chain's GPU time.)
@compute @workgroup_size(WG_FLAT)
fn queue_tiles(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    let s = slot.slot & 1u;
    if (e == 0u) {
        // The other parity's count and size, for the next step: the step_forward that read
        // them (the previous step's) has finished.
        atomicStore(&tile_queue[QUEUE_COUNT_AT + 1u - s], 0u);
        atomicStore(&tile_dispatch[DISPATCH_WORDS * (1u - s)], 0u);
    }
    let a = e / info.tiles_per_sample;
    if (a >= info.n_active) {
        return;
    }
    let loc = active_list[a];
    let b = info.group_start + loc;
    if (samples[b].live == 0u) {
        return;   // settled earlier in this window
    }
    let par = samples[b].clock & 1u;
    let tile = e % info.tiles_per_sample;
    let row = loc * info.tiles_per_sample;
    let now = par * info.group_len * info.tiles_per_sample + row;
    let next = (1u - par) * info.group_len * info.tiles_per_sample + row;
    if (neighbourhood_still(now, tile)) {
        tile_still[next + tile] = 1u;   // nothing here or next door moved
    } else {
        let at = atomicAdd(&tile_queue[QUEUE_COUNT_AT + s], 1u);
        atomicStore(&tile_queue[QUEUE_AT + at], e);
        if (at % atomicLoad(&tile_dispatch[DISPATCH_WORDS * s + 1u]) == 0u) {
            atomicAdd(&tile_dispatch[DISPATCH_WORDS * s], 1u);
        }
    }
}

@compute @workgroup_size(WG_FLAT)
fn sample_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    if (b >= conv.batch) {
        return;
    }
    var s = samples[b];
    if (s.live == 0u) {
        return;
    }
    let k = (slot.slot * conv.batch + b) * STAT_WORDS;
    let md = bitcast<f32>(atomicLoad(&stats[k]));
    let ch = atomicLoad(&stats[k + 1u]);
    let cells = atomicLoad(&stats[k + 2u]);
    s.computed_lo += cells;
    s.computed_hi += u32(s.computed_lo < cells);   // the carry
    s.clock += 1u;
    s.taken += 1u;
    s.last_delta = md;
    s.last_changed = ch;
    if (conv.mode == 1u) {
        if (ch == 0u) {
            s.quiet += 1u;
        } else {
            s.quiet = 0u;
        }
        if (s.quiet >= conv.patience && md < conv.tol) {
            s.converged = 1u;
            s.live = 0u;
        } else if (s.taken >= s.budget) {
            s.live = 0u;
        }
    }
    samples[b] = s;
}

@compute @workgroup_size(WG_FLAT)
fn readout_outputs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_workgroup(wid, nwg) * WG_FLAT + lid;
    if (idx >= info.group_len * info.cells) {
        return;
    }
    let loc = idx / info.cells;
    let par = samples[info.group_start + loc].clock & 1u;
    outs[idx] = argmax_at(par * info.half + idx * C_H);
}
