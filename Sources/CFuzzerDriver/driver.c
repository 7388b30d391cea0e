#include "CFuzzerDriver.h"

#ifdef HERALD_LIBFUZZER
// Exported by libFuzzer (compiler-rt) for programs with their own main: SwiftPM links an
// executable's entry point as main, so libFuzzer's own main is never used.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int herald_fuzz_run_driver(int *argc, char ***argv, herald_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(argc, argv, callback);
}
#else
int herald_fuzz_run_driver(int *argc, char ***argv, herald_fuzz_callback callback) {
    (void)argc;
    (void)argv;
    (void)callback;
    return -1;
}
#endif
