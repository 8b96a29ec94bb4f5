/* docker.h: what the files of the docker module share. docker.c: the
 * module, its clients, a request on a unix socket (core/uhttp.c: no
 * libcurl), demux; tcp.c: a tcp:// engine, with or without TLS, through
 * libcurl (loaded when such an engine is opened); tunnel.c: the ssh
 * process that forwards an ssh:// engine's socket. */
#ifndef PROVISION_DOCKER_H
#define PROVISION_DOCKER_H
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <curl/curl.h>
#include "core.h"
#include "uhttp.h"

#define CERT_PATH_MAX 1024

typedef struct docker_client {
    int open;           /* 0 once closed */
    int unix_socket;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char host[320];
    uhttp_conn conn;    /* a unix socket: the connection, kept alive */
    uhttp_parser reply; /* ... and the last reply */
    /* tcp:// (tcp.c) */
    CURL *curl;
    char *buf;          /* reply body, malloc'd; freed by close */
    size_t len, cap;
    char *hbuf;         /* reply headers (when asked for), malloc'd */
    size_t hlen, hcap;
    int oom, too_big;
    size_t max_body;    /* the most a reply's body may be */
    char base_url[256]; /* http://host:port or https://host:port */
    int tls;
    char ca[CERT_PATH_MAX], cert[CERT_PATH_MAX], key[CERT_PATH_MAX];
    char curl_err[CURL_ERROR_SIZE];
} docker_client;

/* a request, as client:request's arguments say it */
typedef struct docker_req {
    const char *method, *path;
    double timeout, connect_timeout;
    size_t max_body;            /* 0: no limit */
    const char *body;           /* or NULL */
    size_t body_len;
    const char *file;           /* the body from this file, or NULL */
    const char *ctype;          /* the body's Content-Type */
    int want_headers;
} docker_req;

/* docker.c: push the reply's headers as { ["lower-case-name"] = value } */
void docker_push_headers(lua_State *L, const char *h, size_t n);

/* tcp.c. docker_tls_files: the TLS files of opts table t into c (0, or -1
 * with a message pushed); docker_tcp_init: libcurl loaded, a handle made
 * (0, or -1 with err); docker_tcp_request: as client:request returns */
int docker_tls_files(lua_State *L, int t, docker_client *c);
int docker_tcp_init(docker_client *c, char *err, size_t errlen);
int docker_tcp_request(lua_State *L, docker_client *c, const docker_req *r);
void docker_tcp_free(docker_client *c);

/* tunnel.c: docker.tunnel, and its metatable (registered at luaopen) */
int docker_tunnel_start(lua_State *L);
void docker_tunnel_register(lua_State *L);

#endif
