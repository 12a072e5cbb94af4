use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Tesseract's OpenMP threading is ~6x slower on small machines than one thread per engine.
    // The limit must be in the environment before the OpenMP runtime starts, so re-execute once.
    if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        return finagent_ocr_worker::reexec_with_thread_limit();
    }
    let cli = finagent_ocr_worker::Cli::parse();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(finagent_ocr_worker::run(cli))
}
