/* test_sys.c - the request path's system calls without glibc's wrappers (core/sys.h): the
 * callers test for -1 and errno (EAGAIN, EINTR) exactly as with read() and write(), so
 * these must return and set them the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/sys.h"

static void
test_bytes_pass_and_errors_come_back_as_minus_one_and_errno(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char got[16];
    errno = 0;
    assert_int_equal(sys_read(sv[1], got, sizeof(got)), -1); /* nothing written yet */
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(sys_write(sv[0], "ab", 2), 2);
    struct iovec iov[2] = {{.iov_base = "cd", .iov_len = 2}, {.iov_base = "ef", .iov_len = 2}};
    assert_int_equal(sys_writev(sv[0], iov, 2), 4);
    assert_int_equal(sys_read(sv[1], got, sizeof(got)), 6);
    assert_memory_equal(got, "abcdef", 6);
    close(sv[0]);
    assert_int_equal(sys_read(sv[1], got, sizeof(got)), 0); /* the peer's close */
    close(sv[1]);
    errno = 0;
    assert_int_equal(sys_write(sv[1], "x", 1), -1);
    assert_int_equal(errno, EBADF);
    int ep = epoll_create1(0);
    struct epoll_event ev;
    assert_int_equal(sys_epoll_wait(ep, &ev, 1, 0), 0); /* nothing registered: no wait */
    errno = 0;
    assert_int_equal(sys_epoll_wait(-1, &ev, 1, 0), -1);
    assert_int_equal(errno, EBADF);
    close(ep);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_pass_and_errors_come_back_as_minus_one_and_errno),
    };
    return cmocka_run_group_tests_name("sys", tests, NULL, NULL);
}
