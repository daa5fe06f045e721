//! `fake-services PORT=KIND[:TEXT]...`: see `seahawks_tests::services`.

fn main() {
    seahawks_tests::services::run(std::env::args().skip(1));
}
