// Places the columns of one column batch into a resident matrix bound as windows.
// The host prepends, besides the field's constants, the windows of `dst` (bindings 8
// and up, WINDOW_WORDS words each) and `dst_st(i, v)`, which writes word i of the
// whole matrix into its window.
//
// Parameters: total = rows * a, width = columns of the matrix, a = columns of the
// batch, b = the batch's first column. `src` holds the batch row-major (a columns).

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<uniform> prm: Params;

@compute @workgroup_size(WG_SIZE)
fn place_columns(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = prm.base + thread_index(wid, nwg, lid);
    if (t >= prm.total) {
        return;
    }
    let row = t / prm.a;
    let col = t - row * prm.a;
    dst_st(row * prm.width + prm.b + col, src[t]);
}
