#ifndef CLUSDB_CRC32C_H
#define CLUSDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Whether this processor has the CRC-32C instruction (SSE 4.2 on x86-64, the CRC32 extension
/// on AArch64). Decided once per process.
int clusdb_crc32c_hardware_available(void);

/// Advances the CRC-32C register `state` (already inverted: ~0 at the start of a message) over
/// `length` bytes at `bytes` with the processor's instruction. Only call it when
/// clusdb_crc32c_hardware_available() returns 1.
uint32_t clusdb_crc32c_hardware_update(uint32_t state, const void *bytes, size_t length);

#endif
