//! Prints the generated OpenCL program source (both fields, Plonky3's constants
//! included), the input of offline FPGA compilation (`firmware/opencl/BUILD.md`).

fn main() {
    match proofbox_backend_opencl::kernels::program_source() {
        Ok(src) => print!("{src}"),
        Err(e) => {
            eprintln!("cannot generate the program source: {e}");
            std::process::exit(1);
        }
    }
}
