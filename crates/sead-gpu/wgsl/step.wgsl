// sead: inference. Appended to common.wgsl.
//
// step_forward     one step of a group of samples: perceive, mix, tanh, readout, and the
//                  per-sample change statistics (max |h' - h|, outputs changed)
// sample_update    after each step, per sample: its clock, and in converge mode the
//                  settle test (patience, tol, step budget), so many steps run per
//                  submission and a settled sample stops at exactly the step the CPU
//                  backend stops it
// readout_outputs  recomputes every cell's argmax output from its hidden state
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
// [slot][batch][2]: bits of max |h' - h| (non-negative floats order as their bits), and
// the count of changed outputs. Cleared at the start of every window of steps.
@group(0) @binding(5) var<storage, read_write> stats: array<atomic<u32>>;
// Group-local indices of the samples this window steps.
@group(0) @binding(6) var<storage, read> active_list: array<u32>;
@group(0) @binding(7) var<uniform> info: GroupInfo;
@group(0) @binding(8) var<uniform> slot: Slot;
@group(0) @binding(9) var<uniform> conv: ConvInfo;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> wg_flag: u32;

@compute @workgroup_size(128)
fn step_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wl = linear_workgroup(wid, nwg);
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
    load_tile(src, cell0, width, info.height, y, x0, lid);
    workgroupBarrier();
    let n_valid = min(TC, width - x0);
    perceive_tile(n_valid, lid);
    workgroupBarrier();
    let first = y * width + x0;               // the tile's first cell in the sample
    let dmax = mix_tile(n_valid, lid, dst + first * C_H);
    workgroupBarrier();
    var changed = 0u;
    for (var i = lid; i < n_valid; i += WG) {
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
        let k = (slot.slot * conv.batch + b) * 2u;
        if (red_f[0] > 0.0) {
            atomicMax(&stats[k], bitcast<u32>(red_f[0]));
        }
        if (red_u[0] > 0u) {
            atomicAdd(&stats[k + 1u], red_u[0]);
        }
    }
}

@compute @workgroup_size(64)
fn sample_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = linear_workgroup(wid, nwg) * 64u + lid;
    if (b >= conv.batch) {
        return;
    }
    var s = samples[b];
    if (s.live == 0u) {
        return;
    }
    let k = (slot.slot * conv.batch + b) * 2u;
    let md = bitcast<f32>(atomicLoad(&stats[k]));
    let ch = atomicLoad(&stats[k + 1u]);
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

@compute @workgroup_size(64)
fn readout_outputs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_workgroup(wid, nwg) * 64u + lid;
    if (idx >= info.group_len * info.cells) {
        return;
    }
    let loc = idx / info.cells;
    let par = samples[info.group_start + loc].clock & 1u;
    outs[idx] = argmax_at(par * info.half + idx * C_H);
}
