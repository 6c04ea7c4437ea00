#include "hash.h"

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[n] = c;
  }
  crc_table_ready = 1;
}

uint32_t checksum_crc32(const uint8_t *data, size_t len) {
  if (!crc_table_ready) crc_init();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < len; i++) c = crc_table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t checksum_fnv1a32(const uint8_t *data, size_t len) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 0; i < len; i++) {
    h ^= data[i];
    h *= 0x01000193u;
  }
  return h;
}

uint64_t checksum_fnv1a64(const uint8_t *data, size_t len) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
