# Warnings for the project's own targets (tests, examples, benchmarks); never imposed on consumers.
add_library(earlybert_warnings INTERFACE)
target_compile_options(earlybert_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                    -Wnon-virtual-dtor -Wcast-align)
