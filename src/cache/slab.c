/* slab.c - large cached bodies in shared memfds cut into blocks of one size per slab. */
#include "cache/slab.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLAB_CLASSES 11 /* blocks of 64 KiB << 0 .. 10: up to the whole 64 MiB slab */
_Static_assert(CACHE_SLAB_BLOCK_MIN << (SLAB_CLASSES - 1) == CACHE_SLAB_BYTES,
               "the last class is one block per slab");
#define SLAB_OWN SLAB_CLASSES /* the class of a slab holding one body larger than a slab */

struct cache_slab {
    struct cache_slab *prev, *next; /* in its class's list while it has a free block */
    char *map;
    size_t bytes; /* of the memfd and its mapping */
    size_t block;
    int fd;
    int cls;
    uint32_t nblocks, nfree;
    uint32_t lost;   /* blocks whose pages could not be released: never used again */
    uint32_t free[]; /* nfree block numbers, the next one to take last */
};

static struct {
    pthread_mutex_t lock;
    struct cache_slab *open[SLAB_CLASSES]; /* slabs with a free block, by class */
    int files, max_files;
    uint64_t blocks, lost;
} slabs = {.lock = PTHREAD_MUTEX_INITIALIZER};

void
cache_slab_set_files(int n)
{
    pthread_mutex_lock(&slabs.lock);
    slabs.max_files = MAX(n, 0);
    pthread_mutex_unlock(&slabs.lock);
}

static int
class_of(size_t size)
{
    int cls = 0;
    while (cls < SLAB_CLASSES && (CACHE_SLAB_BLOCK_MIN << cls) < size)
        cls++;
    return cls;
}

static void
open_push(struct cache_slab *s)
{
    struct cache_slab **head = &slabs.open[s->cls];
    s->prev = NULL;
    s->next = *head;
    if (*head != NULL)
        (*head)->prev = s;
    *head = s;
}

static void
open_remove(struct cache_slab *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        slabs.open[s->cls] = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

/* A new slab of class cls (SLAB_OWN: of bytes for one body), every block free; NULL when
 * the files allowed are in use or the system refuses. Called with the lock held. */
static struct cache_slab *
slab_new(int cls, size_t bytes)
{
    if (slabs.files >= slabs.max_files)
        return NULL;
    size_t block = cls == SLAB_OWN ? bytes : CACHE_SLAB_BLOCK_MIN << cls;
    bytes = cls == SLAB_OWN ? bytes : CACHE_SLAB_BYTES;
    uint32_t n = (uint32_t)(bytes / block);
    struct cache_slab *s = malloc(sizeof(*s) + n * sizeof(s->free[0]));
    int fd = memfd_create("verge-bodies", MFD_CLOEXEC);
    void *map = MAP_FAILED;
    if (s != NULL && fd >= 0 && ftruncate(fd, (off_t)bytes) == 0)
        map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        if (fd >= 0)
            close(fd);
        free(s);
        return NULL;
    }
    *s = (struct cache_slab){.map = map, .bytes = bytes, .block = block, .fd = fd, .cls = cls,
                             .nblocks = n, .nfree = n};
    for (uint32_t i = 0; i < n; i++)
        s->free[i] = n - 1 - i; /* block 0 first */
    slabs.files++;
    return s;
}

static void
slab_free(struct cache_slab *s)
{
    munmap(s->map, s->bytes);
    close(s->fd);
    slabs.files--;
    free(s);
}

int
cache_slab_take(size_t size, struct cache_slab_piece *p)
{
    if (size == 0)
        return -1;
    int cls = class_of(size);
    pthread_mutex_lock(&slabs.lock);
    struct cache_slab *s = cls == SLAB_OWN ? NULL : slabs.open[cls];
    if (s == NULL) {
        s = slab_new(cls, size);
        if (s == NULL) {
            pthread_mutex_unlock(&slabs.lock);
            return -1;
        }
        if (cls != SLAB_OWN)
            open_push(s);
    }
    uint32_t b = s->free[--s->nfree];
    if (s->nfree == 0 && cls != SLAB_OWN)
        open_remove(s);
    slabs.blocks++;
    pthread_mutex_unlock(&slabs.lock);
    *p = (struct cache_slab_piece){.data = s->map + (size_t)b * s->block, .fd = s->fd,
                                   .off = (off_t)((size_t)b * s->block), .size = size, .slab = s};
    return 0;
}

void
cache_slab_give(struct cache_slab_piece *p)
{
    struct cache_slab *s = p->slab;
    if (s == NULL)
        return;
    p->slab = NULL;
    if (s->cls == SLAB_OWN) { /* closing the memfd lets its pages go */
        pthread_mutex_lock(&slabs.lock);
        slabs.blocks--;
        slab_free(s);
        pthread_mutex_unlock(&slabs.lock);
        return;
    }
    /* The block is still ours: no one can take it while its pages go. The whole block,
     * page-aligned, is punched: a partial page would be zeroed in place instead of let go,
     * under a socket that may still hold it. */
    bool released = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, p->off,
                              (off_t)s->block) == 0;
    pthread_mutex_lock(&slabs.lock);
    slabs.blocks--;
    if (!released) {
        s->lost++; /* never written again: a socket may still hold its pages */
        slabs.lost++;
    } else {
        s->free[s->nfree++] = (uint32_t)(p->off / (off_t)s->block);
        if (s->nfree == 1)
            open_push(s);
    }
    /* A slab with no body left goes, unless it is its class's only open one and whole
     * (kept for the next body). */
    if (s->nfree + s->lost == s->nblocks &&
        (s->lost > 0 || slabs.open[s->cls] != s || s->next != NULL)) {
        if (s->nfree > 0)
            open_remove(s);
        slab_free(s);
    }
    pthread_mutex_unlock(&slabs.lock);
}

void
cache_slab_stats(struct cache_slab_stats *out)
{
    pthread_mutex_lock(&slabs.lock);
    *out = (struct cache_slab_stats){.files = slabs.files, .blocks = slabs.blocks,
                                     .lost = slabs.lost};
    pthread_mutex_unlock(&slabs.lock);
}
