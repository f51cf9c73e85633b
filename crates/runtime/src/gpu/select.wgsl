// Top-K selection shared by the scoring kernels (scoring.rs composes this file with one row reader).
//
// Order (as the CPU `TopK`): a higher score first, among equal scores the lower index; the index
// EMPTY marks "no candidate" and ranks after everything. Scores are never NaN here (the host refuses
// non-finite queries and the shards' loader refuses non-finite rows), so no NaN tests are needed.
//
// A workgroup owns WG * IPT consecutive inputs, IPT per invocation in private arrays. It selects its K
// best in K rounds: each round every invocation offers its best input that ranks after the previous
// round's winner, and a tree reduction in workgroup memory picks the round's winner.

const WG: u32 = 256u;
const IPT: u32 = 8u;
const EMPTY: u32 = 0xffffffffu;

struct Params {
    // Inputs of this dispatch: rows of the binding (scoring) or candidates (merge).
    count: u32,
    // vec4<u32> words per row (16 int8 or 8 f16 values each).
    row_words: u32,
    // Global item index of row 0 of the binding.
    first_index: u32,
    k: u32,
    // Number of sorted excluded item indices.
    excluded: u32,
    // First output slot: candidates (top-K) or scores.
    out_offset: u32,
    // int8: the query's quantization scale.
    query_scale: f32,
    // Workgroups along x of the dispatch (the grid is 2-D beyond 65535 workgroups).
    groups_x: u32,
}

struct Candidate {
    score: f32,
    index: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> excluded: array<u32>;
@group(0) @binding(5) var<storage, read_write> candidates: array<Candidate>;

var<workgroup> round_score: array<f32, WG>;
var<workgroup> round_index: array<u32, WG>;

fn beats(s1: f32, i1: u32, s2: f32, i2: u32) -> bool {
    if (i1 == EMPTY) {
        return false;
    }
    if (i2 == EMPTY) {
        return true;
    }
    return s1 > s2 || (s1 == s2 && i1 < i2);
}

fn is_excluded(index: u32) -> bool {
    var lo = 0u;
    var hi = params.excluded;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let v = excluded[mid];
        if (v == index) {
            return true;
        }
        if (v < index) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return false;
}

fn workgroup_number(wid: vec3<u32>) -> u32 {
    return wid.y * params.groups_x + wid.x;
}

// Writes the workgroup's K best of (scores, indices) to candidates[out .. out + K], best first,
// EMPTY-padded when it has fewer than K inputs.
fn select_top_k(lid: u32, scores: ptr<function, array<f32, IPT>>, indices: ptr<function, array<u32, IPT>>, out: u32) {
    var prev_score = 0.0;
    var prev_index = EMPTY;
    var exhausted = false;
    for (var r = 0u; r < params.k; r++) {
        var best_score = 0.0;
        var best_index = EMPTY;
        if (!exhausted) {
            for (var j = 0u; j < IPT; j++) {
                let s = (*scores)[j];
                let i = (*indices)[j];
                let after_prev = prev_index == EMPTY || beats(prev_score, prev_index, s, i);
                if (after_prev && beats(s, i, best_score, best_index)) {
                    best_score = s;
                    best_index = i;
                }
            }
        }
        round_score[lid] = best_score;
        round_index[lid] = best_index;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (lid < stride) {
                let s = round_score[lid + stride];
                let i = round_index[lid + stride];
                if (beats(s, i, round_score[lid], round_index[lid])) {
                    round_score[lid] = s;
                    round_index[lid] = i;
                }
            }
            workgroupBarrier();
        }
        let winner_score = round_score[0];
        let winner_index = round_index[0];
        workgroupBarrier();
        if (lid == 0u) {
            candidates[out + r] = Candidate(winner_score, winner_index);
        }
        if (winner_index == EMPTY) {
            exhausted = true;
        }
        prev_score = winner_score;
        prev_index = winner_index;
    }
}

// Merge stage: the K best of `merge_in[0 .. count]` per workgroup chunk, into candidates[wg * K ..].
@group(0) @binding(7) var<storage, read> merge_in: array<Candidate>;

@compute @workgroup_size(WG)
fn merge(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let group = workgroup_number(wid);
    if (group * WG * IPT >= params.count) {
        return; // padding of a 2-D grid
    }
    var scores: array<f32, IPT>;
    var indices: array<u32, IPT>;
    for (var j = 0u; j < IPT; j++) {
        let at = group * WG * IPT + j * WG + lid;
        if (at < params.count) {
            let c = merge_in[at];
            scores[j] = c.score;
            indices[j] = c.index;
        } else {
            scores[j] = 0.0;
            indices[j] = EMPTY;
        }
    }
    select_top_k(lid, &scores, &indices, group * params.k);
}
