fn main() {
    std::process::exit(kezek_admin::cli::main());
}
