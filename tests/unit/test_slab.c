/* test_slab.c - large bodies in shared memfds: one memfd per block size, blocks that never
 * overlap, a freed block's pages released before it is used again, the file limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/slab.h"

#define KiB ((size_t)1024)

static int
files_held(void)
{
    struct cache_slab_stats st;
    cache_slab_stats(&st);
    return st.files;
}

/* Bytes of memory the memfd holds (pages written and not released). */
static long long
resident(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (long long)st.st_blocks * 512;
}

static int
setup(void **state)
{
    cache_slab_set_files(16);
    return 0;
}

static void
test_bodies_of_one_block_size_share_a_memfd_without_overlapping(void **state)
{
    struct cache_slab_piece p[20];
    for (int i = 0; i < 20; i++) {
        assert_int_equal(cache_slab_take(100 * KiB + (size_t)i, &p[i]), 0);
        memset(p[i].data, 'a' + i, p[i].size);
    }
    assert_int_equal(files_held(), 1);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(p[i].fd, p[0].fd);
        assert_true(p[i].off % (off_t)(128 * KiB) == 0); /* 100 KiB takes a 128 KiB block */
        /* the file has the bytes the mapping was given, at the piece's offset */
        char got[64];
        assert_int_equal(pread(p[i].fd, got, sizeof(got), p[i].off + 1000), (ssize_t)sizeof(got));
        for (size_t k = 0; k < sizeof(got); k++)
            assert_int_equal(got[k], 'a' + i);
    }
    for (int i = 0; i < 20; i++)
        cache_slab_give(&p[i]);
    assert_null(p[0].slab); /* given back twice is harmless */
    cache_slab_give(&p[0]);
    assert_int_equal(files_held(), 1); /* the class's only slab stays for the next body */
}

static void
test_each_block_size_has_its_own_memfd_and_a_huge_body_its_own(void **state)
{
    struct cache_slab_piece small, mid, whole, huge;
    assert_int_equal(cache_slab_take(64 * KiB, &small), 0);
    assert_int_equal(cache_slab_take(1000 * KiB, &mid), 0);
    assert_int_equal(cache_slab_take(CACHE_SLAB_BYTES, &whole), 0);
    assert_int_equal(cache_slab_take(CACHE_SLAB_BYTES + 1, &huge), 0);
    assert_int_not_equal(small.fd, mid.fd);
    assert_int_not_equal(mid.fd, whole.fd);
    assert_int_not_equal(whole.fd, huge.fd);
    assert_int_equal(huge.off, 0);
    huge.data[CACHE_SLAB_BYTES] = 'z'; /* its last byte is there */
    int before = files_held();
    cache_slab_give(&huge);
    assert_int_equal(files_held(), before - 1); /* closed: a body of its own is not kept */
    cache_slab_give(&small);
    cache_slab_give(&mid);
    cache_slab_give(&whole);
}

static void
test_a_freed_block_is_released_before_it_is_used_again(void **state)
{
    struct cache_slab_piece a, b;
    assert_int_equal(cache_slab_take(200 * KiB, &a), 0);
    memset(a.data, 'x', a.size);
    long long full = resident(a.fd);
    assert_true(full >= (long long)(200 * KiB));
    int fd = a.fd;
    off_t off = a.off;
    cache_slab_give(&a);
    assert_true(resident(fd) <= full - (long long)(200 * KiB)); /* its pages went */
    assert_int_equal(cache_slab_take(150 * KiB, &b), 0);
    assert_int_equal(b.fd, fd);
    assert_int_equal(b.off, off); /* the same block, taken again */
    for (size_t k = 0; k < 256 * KiB; k += 4096)
        assert_int_equal(b.data[k], 0); /* fresh pages, nothing of the old body */
    cache_slab_give(&b);
}

static void
test_no_memfd_is_made_past_the_file_limit(void **state)
{
    int held = files_held();
    cache_slab_set_files(held + 1);
    struct cache_slab_piece p0, p1, q;
    /* 64 MiB blocks, one per slab: the class's kept slab, then one more file */
    assert_int_equal(cache_slab_take(40 * 1024 * KiB, &p0), 0);
    assert_int_equal(cache_slab_take(40 * 1024 * KiB, &p1), 0);
    assert_int_equal(files_held(), held + 1);
    assert_int_equal(cache_slab_take(40 * 1024 * KiB, &q), -1);
    assert_int_equal(cache_slab_take(2 * CACHE_SLAB_BYTES, &q), -1); /* its own file: no */
    assert_int_equal(cache_slab_take(0, &q), -1);
    cache_slab_give(&p0);
    assert_int_equal(cache_slab_take(40 * 1024 * KiB, &q), 0); /* the block given back */
    cache_slab_give(&q);
    cache_slab_give(&p1);
    assert_int_equal(files_held(), held); /* one of the two empty slabs went */
}

static void
test_an_empty_slab_goes_when_its_class_has_another(void **state)
{
    /* 16 MiB blocks: four per slab; five bodies need two slabs */
    struct cache_slab_piece p[5];
    int before = files_held();
    for (int i = 0; i < 5; i++)
        assert_int_equal(cache_slab_take(10 * 1024 * KiB, &p[i]), 0);
    assert_int_equal(files_held(), before + 2);
    for (int i = 0; i < 4; i++)
        cache_slab_give(&p[i]); /* the first slab is empty, the second still open */
    assert_int_equal(files_held(), before + 1);
    cache_slab_give(&p[4]); /* the class's last slab stays */
    assert_int_equal(files_held(), before + 1);
    struct cache_slab_stats st;
    cache_slab_stats(&st);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(st.lost, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_bodies_of_one_block_size_share_a_memfd_without_overlapping, setup),
        cmocka_unit_test_setup(test_each_block_size_has_its_own_memfd_and_a_huge_body_its_own, setup),
        cmocka_unit_test_setup(test_a_freed_block_is_released_before_it_is_used_again, setup),
        cmocka_unit_test_setup(test_no_memfd_is_made_past_the_file_limit, setup),
        cmocka_unit_test_setup(test_an_empty_slab_goes_when_its_class_has_another, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
