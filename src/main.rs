use clap::Parser;

fn main() -> std::process::ExitCode {
    // Development convenience; real environment variables win over the file.
    let _ = dotenvy::dotenv();
    let cli = randomize::cli::Cli::parse();
    match randomize::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line, naming the variable for configuration errors; never a secret.
            eprintln!("randomize: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
