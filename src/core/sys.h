/* sys.h - the system calls of the request path, without glibc's cancellation wrappers.
 *
 * In a process with more than one thread, glibc's read(), write(), writev() and
 * epoll_wait() are cancellation points: each one turns asynchronous cancellation on before
 * the call and off after it, with a locked compare-and-swap on the thread's cancel state.
 * The one after the call waits for the stores the kernel made during it (the bytes it
 * copied to the read buffer) to drain first. Under perf, that second swap was 1.4% of
 * Verge's CPU on cache hits, the largest user-space cost after llhttp. Verge never cancels
 * a thread (workers stop through their loops), so these go straight to the kernel through
 * syscall(2), which sets errno as the wrappers do. */
#ifndef VERGE_CORE_SYS_H
#define VERGE_CORE_SYS_H

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static inline ssize_t
sys_read(int fd, void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_read, fd, buf, len);
}

static inline ssize_t
sys_write(int fd, const void *buf, size_t len)
{
    return (ssize_t)syscall(SYS_write, fd, buf, len);
}

static inline ssize_t
sys_writev(int fd, const struct iovec *iov, int n)
{
    return (ssize_t)syscall(SYS_writev, fd, iov, n);
}

static inline int
sys_epoll_wait(int epfd, struct epoll_event *events, int max, int timeout_ms)
{
    return (int)syscall(SYS_epoll_wait, epfd, events, max, timeout_ms);
}

#endif
