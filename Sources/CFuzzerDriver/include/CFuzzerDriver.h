#ifndef HERALD_FUZZER_DRIVER_H
#define HERALD_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's per-input callback (LLVMFuzzerTestOneInput's signature).
typedef int (*herald_fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver (LLVMFuzzerRunDriver) with the program's arguments and returns its
/// result, in a build with -DHERALD_LIBFUZZER that links libFuzzer (`make fuzz`). In any other
/// build it returns -1 at once and the caller replays files itself.
int herald_fuzz_run_driver(int *argc, char ***argv, herald_fuzz_callback callback);

#endif
