/* slab.h - room for large cached bodies in a few shared memfds, so that each can be sent
 * with sendfile without holding an open file of its own.
 *
 * A slab is one memfd of CACHE_SLAB_BYTES, mapped once, cut into blocks of one size: 64 KiB
 * in the first class, twice that in each next one, up to the whole slab. A body takes the
 * smallest block that holds it; only the pages it writes use memory (a memfd's pages are
 * made when first touched), so a block larger than its body costs address space, not RAM.
 * A body larger than a slab gets a memfd of its own. A freed block's pages are released
 * (a hole punched) before the block is used again: sendfile hands the pages themselves to
 * the socket, which may still hold them after the answer was written, and a new body must
 * never write into them.
 *
 * Thread-safe: one mutex, taken when a body is stored or freed, never to read one. */
#ifndef VERGE_CACHE_SLAB_H
#define VERGE_CACHE_SLAB_H

#include "core/base.h"

#include <sys/types.h>

#define CACHE_SLAB_BYTES ((size_t)64 << 20)
#define CACHE_SLAB_BLOCK_MIN ((size_t)64 << 10) /* and the smallest body worth a block */

struct cache_slab;

/* A block: size bytes at data, which are bytes [off, off + size) of the file fd. */
struct cache_slab_piece {
    char *data;
    int fd;
    off_t off;
    size_t size;
    struct cache_slab *slab;
};

/* How many memfds the slabs may hold at once (each an open file): a slab is made only while
 * fewer are held. 0 (the default): none is made, and every cache_slab_take fails. */
void cache_slab_set_files(int n);
/* A block of at least size bytes (size >= 1) into *p; -1 when none can be had (the files
 * allowed are all in use and full, or the system refuses): keep the body in memory. */
int cache_slab_take(size_t size, struct cache_slab_piece *p);
/* Gives p's block back; its pages are released. */
void cache_slab_give(struct cache_slab_piece *p);

struct cache_slab_stats {
    int files;        /* memfds held */
    uint64_t blocks;  /* blocks in use */
    uint64_t lost;    /* blocks that could not be released, never used again */
};
void cache_slab_stats(struct cache_slab_stats *out);

#endif
