/* test_net.c - listening sockets: what Verge relies on of every connection it accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/net.h"

/* TCP_NODELAY is set once on the listener (net_listen) and no longer per connection:
 * without it on an accepted socket, a head written ahead of its body waits 40 ms. */
static void
test_accepted_connections_have_nagle_off(void **state)
{
    struct config_addr addr = {.salen = sizeof(struct sockaddr_in)};
    struct sockaddr_in *in = (struct sockaddr_in *)&addr.sa;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = net_listen(&addr, 8);
    assert_true(l >= 0);
    struct sockaddr_in bound;
    socklen_t len = sizeof(bound);
    assert_int_equal(getsockname(l, (struct sockaddr *)&bound, &len), 0);
    for (int i = 0; i < 3; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(c, (struct sockaddr *)&bound, len), 0);
        int fd = -1;
        for (int tries = 0; fd < 0 && tries < 1000; tries++) {
            fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
            if (fd < 0)
                usleep(1000);
        }
        assert_true(fd >= 0);
        int on = 0;
        socklen_t onlen = sizeof(on);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &onlen), 0);
        assert_int_equal(on, 1);
        close(fd);
        close(c);
    }
    close(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_connections_have_nagle_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
