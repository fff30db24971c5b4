fn main() {
    eprintln!("replica: not built yet");
    std::process::exit(1);
}
