// Native test of src/hash.c (not part of the plugin; warden build compiles
// only the .c files of the plugin directory and src/):
//   cc -std=c11 -Wall -Isrc -o /tmp/hash_test tests/hash_test.c src/hash.c && /tmp/hash_test
// Expected values: Python's zlib.crc32 and the FNV reference test vectors.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"

static int failures;

static void check(const char *input, size_t len, uint32_t crc, uint32_t f32, uint64_t f64) {
  const uint8_t *d = (const uint8_t *)input;
  uint32_t c = checksum_crc32(d, len), a = checksum_fnv1a32(d, len);
  uint64_t b = checksum_fnv1a64(d, len);
  if (c != crc || a != f32 || b != f64) {
    printf("FAIL %.*s: crc32 %08" PRIx32 " fnv1a32 %08" PRIx32 " fnv1a64 %016" PRIx64 "\n", (int)len, input, c, a, b);
    failures++;
  }
}

int main(void) {
  check("", 0, 0x00000000u, 0x811c9dc5u, 0xcbf29ce484222325ull);
  check("a", 1, 0xe8b7be43u, 0xe40c292cu, 0xaf63dc4c8601ec8cull);
  check("foobar", 6, 0x9ef61f95u, 0xbf9cf968u, 0x85944171f73967e8ull);
  check("123456789", 9, 0xcbf43926u, 0xbb86b11cu, 0x06d5573923c6cdfcull);
  check("hello world\n", 12, 0xaf083b2du, 0xd7353d57u, 0x782e1488cd5a68b7ull);
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  check((const char *)all, sizeof all, 0x29058c73u, 0x90a458c5u, 0x4242dc5249c33625ull);
  if (failures == 0) printf("ok\n");
  return failures != 0;
}
