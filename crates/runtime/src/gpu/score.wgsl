// Scoring entry points shared by the row readers (scoring.rs composes select.wgsl + a row reader +
// this file). The row reader defines `rows`, `query` and `row_score(row) -> f32`.

@group(0) @binding(6) var<storage, read_write> scores_out: array<f32>;

// scores_out[out_offset + r] = row_score(r) for every row r of the binding.
@compute @workgroup_size(WG)
fn score(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let r = workgroup_number(wid) * WG + lid;
    if (r < params.count) {
        scores_out[params.out_offset + r] = row_score(r);
    }
}

// First stage of top-K: each workgroup scores its WG * IPT rows (excluded items left out) and writes
// its K best to candidates[out_offset + group * K ..].
@compute @workgroup_size(WG)
fn score_top_k(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let group = workgroup_number(wid);
    if (group * WG * IPT >= params.count) {
        return; // padding of a 2-D grid
    }
    var scores: array<f32, IPT>;
    var indices: array<u32, IPT>;
    for (var j = 0u; j < IPT; j++) {
        // Invocations read neighbouring rows at each step (coalesced loads).
        let r = group * WG * IPT + j * WG + lid;
        let index = params.first_index + r;
        if (r < params.count && !is_excluded(index)) {
            scores[j] = row_score(r);
            indices[j] = index;
        } else {
            scores[j] = 0.0;
            indices[j] = EMPTY;
        }
    }
    select_top_k(lid, &scores, &indices, params.out_offset + group * params.k);
}
