// The checksums of the `checksum` plugin, free of any WebAssembly bindings
// (tests/hash_test.c runs them natively).
#ifndef CHECKSUM_HASH_H
#define CHECKSUM_HASH_H

#include <stddef.h>
#include <stdint.h>

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib's crc32().
uint32_t checksum_crc32(const uint8_t *data, size_t len);

// FNV-1a, 32 bits (offset basis 0x811c9dc5, prime 0x01000193).
uint32_t checksum_fnv1a32(const uint8_t *data, size_t len);

// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t checksum_fnv1a64(const uint8_t *data, size_t len);

#endif
