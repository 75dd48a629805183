//! Prints the adapters wgpu sees and the limits sead-gpu runs with:
//! `cargo run --release -p sead-gpu --example probe`.
fn main() {
    for a in sead_gpu::list_adapters() {
        println!("adapter: {}", a.describe());
    }
    match sead_gpu::GpuContext::new(&Default::default()) {
        Ok(ctx) => {
            println!("using: {}", ctx.adapter_info().describe());
            println!("limits: {:?}", ctx.limits());
        }
        Err(e) => println!("error: {e}"),
    }
}
