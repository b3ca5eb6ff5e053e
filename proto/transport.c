/* transport.c — addresses, private ipc endpoints, heartbeats, clocks and log
 * lines for the TLS front end and dialer. No state; every function is
 * thread-safe. */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char IPC_PREFIX[] = "ipc://";

enum { LOG_LINE_MAX = 1024 };

void jx_transport_log(jx_log_fn log, void *arg, const char *format, ...)
{
    if (log == NULL)
        return;
    char line[LOG_LINE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    log(arg, line);
}

void jx_transport_log_quote(const char *in, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = (c == '"' || c == '\\') ? '\'' : (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[j] = '\0';
}

int jx_transport_split_address(const char *address, char *host, size_t host_size, char *port,
                               size_t port_size, jx_error *err)
{
    if (address == NULL || *address == '\0')
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "no address given (expected host:port)");
    const char *host_start = address;
    const char *host_end;
    const char *colon;
    if (*address == '[') {
        host_start = address + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':')
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "address \"%s\" is not of the form [IPv6]:port", address);
        colon = host_end + 1;
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL)
            return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                                "address \"%s\" is not of the form host:port", address);
        host_end = colon;
    }
    size_t host_len = (size_t)(host_end - host_start);
    size_t port_len = strlen(colon + 1);
    if (host_len == 0 || host_len >= host_size || port_len == 0 || port_len >= port_size)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "address \"%s\" has an empty or too long host or port", address);
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    memcpy(port, colon + 1, port_len + 1);
    return 0;
}

int jx_transport_private_ipc(const char *endpoint, struct sockaddr_un *addr, jx_error *err)
{
    if (endpoint == NULL || strncmp(endpoint, IPC_PREFIX, sizeof IPC_PREFIX - 1) != 0)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "private endpoint \"%s\" must be ipc://<directory>/<name>",
                            endpoint ? endpoint : "(null)");
    const char *path = endpoint + sizeof IPC_PREFIX - 1;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (path[0] != '/' || strlen(path) >= sizeof addr->sun_path)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT,
                            "private endpoint path \"%s\" must be absolute and shorter than %zu "
                            "bytes",
                            path, sizeof addr->sun_path);
    strcpy(addr->sun_path, path);

    char dir[sizeof addr->sun_path];
    strcpy(dir, path);
    const char *parent = dirname(dir);
    struct stat st;
    if (stat(parent, &st) != 0)
        return jx_error_set(err, JX_ERR_CONFIG, "directory %s of private endpoint %s: %s", parent,
                            endpoint, strerror(errno));
    if (!S_ISDIR(st.st_mode) || (st.st_mode & 077) != 0 || st.st_uid != geteuid())
        return jx_error_set(err, JX_ERR_CONFIG,
                            "directory %s of private endpoint %s must be a directory of mode "
                            "0700 owned by uid %u (it is mode %04o, uid %u)",
                            parent, endpoint, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
                            (unsigned)st.st_uid);
    return 0;
}

int jx_transport_set_heartbeat(void *zmq_socket, int interval_ms, jx_error *err)
{
    if (interval_ms <= 0)
        return jx_error_set(err, JX_ERR_INVALID_ARGUMENT, "heartbeat interval must be positive");
    int timeout = interval_ms * 3;
    if (zmq_setsockopt(zmq_socket, ZMQ_HEARTBEAT_IVL, &interval_ms, sizeof interval_ms) != 0 ||
        zmq_setsockopt(zmq_socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout) != 0 ||
        zmq_setsockopt(zmq_socket, ZMQ_HEARTBEAT_TTL, &timeout, sizeof timeout) != 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot set ZeroMQ heartbeat options: %s",
                            zmq_strerror(zmq_errno()));
    return 0;
}

int64_t jx_transport_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void jx_transport_format_sockaddr(const void *sockaddr, char *out, size_t size)
{
    const struct sockaddr *sa = sockaddr;
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = sockaddr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = sockaddr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, size, "local");
    }
}

void jx_transport_tune_tcp(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

int jx_transport_nonblocking(int fd, jx_error *err)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return jx_error_set(err, JX_ERR_SYSTEM, "cannot make socket non-blocking: %s",
                            strerror(errno));
    return 0;
}

int jx_transport_private_dir(const char *path, jx_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return jx_error_set(err, JX_ERR_IO, "cannot create directory %s: %s", path,
                            strerror(errno));
    if (chmod(path, 0700) != 0)
        return jx_error_set(err, JX_ERR_IO, "cannot make %s private (0700): %s", path,
                            strerror(errno));
    return 0;
}
