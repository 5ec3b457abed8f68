#ifndef TALLY_CCRC32C_SHIM_H
#define TALLY_CCRC32C_SHIM_H
// CRC-32C with the processor's own instruction (SSE 4.2 `crc32` on x86-64, the CRC
// extension on ARMv8). Swift cannot name these instructions; a header-only C function is
// compiled into the Swift module that imports it. The callers check
// `tally_crc32c_hardware()` once and keep the table-driven code for other processors.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

static inline int tally_crc32c_hardware(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_SSE4_2) != 0;
}

/// The running CRC `crc` (not inverted) extended over `length` bytes at `data`.
__attribute__((target("sse4.2")))
static inline uint32_t tally_crc32c_update(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length > 0) {
        c32 = __builtin_ia32_crc32qi(c32, *p);
        p += 1;
        length -= 1;
    }
    return c32;
}

#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>

static inline int tally_crc32c_hardware(void) { return 1; }

static inline uint32_t tally_crc32c_update(uint32_t crc, const void *data, size_t length) {
    const unsigned char *p = (const unsigned char *)data;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __crc32cd(crc, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        crc = __crc32cb(crc, *p);
        p += 1;
        length -= 1;
    }
    return crc;
}

#else
static inline int tally_crc32c_hardware(void) { return 0; }

static inline uint32_t tally_crc32c_update(uint32_t crc, const void *data, size_t length) {
    (void)data;
    (void)length;
    return crc;
}
#endif

#endif
