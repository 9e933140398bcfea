/*
 * kafka-mock: runs librdkafka's in-process mock Kafka cluster (rdkafka_mock.h)
 * as a child process for the test suite, which has no Docker and no Apache
 * Kafka. Prints one `BOOTSTRAP host:port,...` line, then serves line commands
 * on stdin (down/up/rtt/topic/coordinator/error/quit), answering `ok` or
 * `error <reason>`. Driven by test/helpers/kafka-mock.ts.
 *
 * Usage: kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...
 *
 * Protocol (one answer line per command line, in order):
 *   down <broker-id>|all          stop accepting, close connections
 *   up <broker-id>|all            accept connections again (same port)
 *   rtt <broker-id>|all <ms>      delay every response by <ms>
 *   topic <name> <partitions>     create a topic (the mock has no CreateTopics)
 *   coordinator <group> <broker>  pin a consumer group's coordinator
 *   error <api-key> <error-code>  answer the next request of that API (on
 *                                 any broker) with that Kafka error code,
 *                                 e.g. `error 0 10`: the next Produce gets
 *                                 MESSAGE_TOO_LARGE (the mock itself never
 *                                 checks message.max.bytes)
 *   quit                          destroy the cluster and exit 0 (EOF too)
 *
 * stdout carries nothing but the BOOTSTRAP line and the answers; librdkafka
 * logs go to stderr (its default log_cb), which the harness shows on failure.
 *
 * Leadership. The mock never moves leaders by itself ("set_down does NOT
 * trigger leader change"), and it picks a random replica as the first leader.
 * So this launcher owns placement: partition p of every topic it created
 * prefers broker (p % N) + 1; after each command, a partition whose leader is
 * down moves to the next broker that is up, and goes back to its preferred
 * broker when that one is up again (like Kafka's preferred-leader election).
 * When every broker is down the leaders stay where they were, so "all down,
 * then all up" restores exactly the original placement. Partition data lives
 * in the cluster, not in a broker, so a leader change loses nothing.
 *
 * Retention. Each mock partition keeps at most 5 MiB of record batches and
 * 100000 batches (mpart->max_size / max_cnt, hard-coded in rdkafka_mock.c
 * 2.0.2); older batches are silently dropped and the log start offset moves
 * up. Neither the 2.0.2 public API nor any configuration property can raise
 * it, and the mock structs are private, so tests that push more than ~5 MiB
 * through one partition must read as they go or use more partitions.
 *
 * Wake-ups. In 2.0.2 the mock thread drains its wake-up pipe *after*
 * serving its op queue, and librdkafka writes at most one wake-up byte per
 * "non-polling period", so control calls (set_down, set_leader, ...) often
 * wait for the thread's 1 s poll timeout instead (measured: p90 1.2 s, max
 * 2 s per command). While a command runs, a ticker thread writes one byte
 * into that pipe every TICK_MS, which brings commands back to milliseconds;
 * it sleeps otherwise.
 * (The mock's own timers, e.g. Fetch MaxWait, are unaffected: they run on the
 * mock thread, which computes its poll timeout from them.)
 *
 * Topics a client auto-creates through Metadata (the mock allows it) are not
 * known here: they get 4 partitions with random leaders that never move.
 * Group coordinators are chosen by hashing the group id over all brokers, up
 * or not; `coordinator` pins one when a test keeps a broker down.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS 64
#define MAX_LINE 4096
#define MAX_FDS 1024
#define TICK_MS 5

typedef struct {
        char *name;
        int partition_cnt;
        int32_t *leaders; /* current leader per partition, as set by us */
} topic_t;

static rd_kafka_mock_cluster_t *mcluster;
static int broker_cnt = 3;
static int broker_up[MAX_BROKERS + 1];
static topic_t *topics;
static size_t topic_cnt;

static int wakeup_fd = -1;
static pthread_t ticker;
static int ticker_started;
static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cond   = PTHREAD_COND_INITIALIZER;
static int tick_wanted; /* guarded by tick_lock */
static int tick_quit;   /* guarded by tick_lock */

/* Marks which of fds 0..MAX_FDS-1 are non-blocking write ends of pipes. */
static void scan_pipe_write_ends(unsigned char *is_pipe_w) {
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *entry;

        memset(is_pipe_w, 0, MAX_FDS);
        if (!dir)
                return;
        while ((entry = readdir(dir))) {
                struct stat st;
                int fd = atoi(entry->d_name);
                int flags;

                if (entry->d_name[0] == '.' || fd < 0 || fd >= MAX_FDS ||
                    fd == dirfd(dir) || fstat(fd, &st) || !S_ISFIFO(st.st_mode))
                        continue;
                flags = fcntl(fd, F_GETFL);
                if (flags != -1 && (flags & O_ACCMODE) == O_WRONLY &&
                    (flags & O_NONBLOCK))
                        is_pipe_w[fd] = 1;
        }
        closedir(dir);
}

/* The mock's wake-up pipe is the last pipe rd_kafka_mock_cluster_new()
 * creates (after the internal broker's pipe and the listen sockets); fds
 * are allocated lowest-free first, so it has the highest new fd number.
 * Returns a dup of it, so poking stays safe after the mock closes its own
 * copy during destroy (the number could otherwise be reused). */
static int find_wakeup_fd(const unsigned char *before,
                          const unsigned char *after) {
        int fd;

        for (fd = MAX_FDS - 1; fd >= 0; fd--)
                if (after[fd] && !before[fd])
                        return dup(fd);
        return -1;
}

static void *ticker_main(void *arg) {
        const struct timespec tick = {0, TICK_MS * 1000000L};
        const char onebyte         = 1;

        (void)arg;
        pthread_mutex_lock(&tick_lock);
        while (!tick_quit) {
                if (!tick_wanted) {
                        pthread_cond_wait(&tick_cond, &tick_lock);
                        continue;
                }
                pthread_mutex_unlock(&tick_lock);
                /* Non-blocking: a full pipe (EAGAIN) already means "wake". */
                /* EPIPE: the mock thread has exited during destroy. */
                if (write(wakeup_fd, &onebyte, 1) == -1 && errno != EAGAIN &&
                    errno != EPIPE)
                        fprintf(stderr, "kafka-mock: wake-up write: %s\n",
                                strerror(errno));
                nanosleep(&tick, NULL);
                pthread_mutex_lock(&tick_lock);
        }
        pthread_mutex_unlock(&tick_lock);
        return NULL;
}

/* Brackets every run of mock control calls. */
static void set_ticking(int wanted) {
        pthread_mutex_lock(&tick_lock);
        tick_wanted = wanted;
        pthread_cond_signal(&tick_cond);
        pthread_mutex_unlock(&tick_lock);
}

static void reply_ok(void) {
        fputs("ok\n", stdout);
        fflush(stdout);
}

static void reply_error(const char *fmt, const char *arg) {
        fputs("error ", stdout);
        fprintf(stdout, fmt, arg);
        fputc('\n', stdout);
        fflush(stdout);
}

/* Parses a decimal int in [min, max]; returns 0 on success. */
static int parse_int(const char *s, long min, long max, long *out) {
        char *end;
        long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

static int32_t preferred_leader(int partition) {
        return (int32_t)(partition % broker_cnt) + 1;
}

/* The broker partition `p` should be led by now, or -1 to leave it alone. */
static int32_t desired_leader(int partition) {
        int32_t first = preferred_leader(partition);
        int i;

        for (i = 0; i < broker_cnt; i++) {
                int32_t id = (int32_t)((first - 1 + i) % broker_cnt) + 1;
                if (broker_up[id])
                        return id;
        }
        return -1; /* all down: keep the current leader */
}

/* Moves leaders so every partition sits on an up broker (preferred first).
 * Returns the first error, after trying every partition. */
static rd_kafka_resp_err_t place_leaders(void) {
        rd_kafka_resp_err_t first_err = RD_KAFKA_RESP_ERR_NO_ERROR;
        size_t t;
        int p;

        for (t = 0; t < topic_cnt; t++) {
                for (p = 0; p < topics[t].partition_cnt; p++) {
                        int32_t want = desired_leader(p);
                        rd_kafka_resp_err_t err;

                        if (want == -1 || want == topics[t].leaders[p])
                                continue;
                        err = rd_kafka_mock_partition_set_leader(
                            mcluster, topics[t].name, p, want);
                        if (err) {
                                if (!first_err)
                                        first_err = err;
                                continue;
                        }
                        topics[t].leaders[p] = want;
                }
        }
        return first_err;
}

static rd_kafka_resp_err_t create_topic(const char *name, int partition_cnt) {
        int replication_factor = broker_cnt < 3 ? broker_cnt : 3;
        rd_kafka_resp_err_t err;
        topic_t *grown;
        topic_t *topic;
        int p;

        err = rd_kafka_mock_topic_create(mcluster, name, partition_cnt,
                                         replication_factor);
        if (err)
                return err;

        grown = realloc(topics, (topic_cnt + 1) * sizeof(*topics));
        if (!grown)
                return RD_KAFKA_RESP_ERR__FAIL;
        topics = grown;

        topic                = &topics[topic_cnt];
        topic->name          = strdup(name);
        topic->partition_cnt = partition_cnt;
        topic->leaders       = calloc((size_t)partition_cnt, sizeof(int32_t));
        if (!topic->name || !topic->leaders) {
                free(topic->name);
                free(topic->leaders);
                return RD_KAFKA_RESP_ERR__FAIL;
        }
        /* 0 is never a broker id, so place_leaders() sets every partition
         * and replaces the mock's random initial choice. */
        for (p = 0; p < partition_cnt; p++)
                topic->leaders[p] = 0;
        topic_cnt++;

        return place_leaders();
}

/* Parses "<id>|all" into [*lo, *hi]; returns 0 on success. */
static int parse_broker_range(const char *s, int *lo, int *hi) {
        long id;

        if (s && !strcmp(s, "all")) {
                *lo = 1;
                *hi = broker_cnt;
                return 0;
        }
        if (parse_int(s, 1, broker_cnt, &id))
                return -1;
        *lo = *hi = (int)id;
        return 0;
}

static void cmd_updown(const char *arg, int up) {
        rd_kafka_resp_err_t err;
        int lo, hi, id;

        if (parse_broker_range(arg, &lo, &hi)) {
                reply_error("bad broker id '%s'", arg ? arg : "");
                return;
        }

        for (id = lo; id <= hi; id++)
                broker_up[id] = up;

        /* Going down: hand leadership over before disconnecting, as a
         * controlled shutdown does, so clients that refresh metadata after
         * the disconnect already see the new leader. With "all" nothing is
         * up and every leader stays put. */
        if (!up && (err = place_leaders())) {
                reply_error("%s", rd_kafka_err2str(err));
                return;
        }
        for (id = lo; id <= hi; id++) {
                err = up ? rd_kafka_mock_broker_set_up(mcluster, id)
                         : rd_kafka_mock_broker_set_down(mcluster, id);
                if (err) {
                        reply_error("%s", rd_kafka_err2str(err));
                        return;
                }
        }
        if (up && (err = place_leaders())) {
                reply_error("%s", rd_kafka_err2str(err));
                return;
        }
        reply_ok();
}

static void cmd_rtt(const char *arg, const char *ms_arg) {
        rd_kafka_resp_err_t err;
        int lo, hi, id;
        long ms;

        if (parse_broker_range(arg, &lo, &hi)) {
                reply_error("bad broker id '%s'", arg ? arg : "");
                return;
        }
        if (parse_int(ms_arg, 0, INT_MAX / 1000, &ms)) {
                reply_error("bad rtt '%s'", ms_arg ? ms_arg : "");
                return;
        }
        for (id = lo; id <= hi; id++) {
                err = rd_kafka_mock_broker_set_rtt(mcluster, id, (int)ms);
                if (err) {
                        reply_error("%s", rd_kafka_err2str(err));
                        return;
                }
        }
        reply_ok();
}

static void cmd_topic(const char *name, const char *partitions_arg) {
        rd_kafka_resp_err_t err;
        long partitions;

        if (!name || !*name) {
                reply_error("%s", "missing topic name");
                return;
        }
        if (parse_int(partitions_arg, 1, 10000, &partitions)) {
                reply_error("bad partition count '%s'",
                            partitions_arg ? partitions_arg : "");
                return;
        }
        err = create_topic(name, (int)partitions);
        if (err) {
                reply_error("%s", rd_kafka_err2str(err));
                return;
        }
        reply_ok();
}

static void cmd_coordinator(const char *group, const char *broker_arg) {
        rd_kafka_resp_err_t err;
        long id;

        if (!group || !*group) {
                reply_error("%s", "missing group id");
                return;
        }
        if (parse_int(broker_arg, 1, broker_cnt, &id)) {
                reply_error("bad broker id '%s'", broker_arg ? broker_arg : "");
                return;
        }
        err = rd_kafka_mock_coordinator_set(mcluster, "group", group,
                                            (int32_t)id);
        if (err) {
                reply_error("%s", rd_kafka_err2str(err));
                return;
        }
        reply_ok();
}

/* Queues one error for the next request of an API key, cluster-wide. An
 * errored Produce appends nothing (the mock checks injected errors first). */
static void cmd_error(const char *api_key_arg, const char *code_arg) {
        long api_key, code;

        if (parse_int(api_key_arg, 0, INT16_MAX, &api_key)) {
                reply_error("bad api key '%s'", api_key_arg ? api_key_arg : "");
                return;
        }
        if (parse_int(code_arg, 1, INT16_MAX, &code)) {
                reply_error("bad error code '%s'", code_arg ? code_arg : "");
                return;
        }
        rd_kafka_mock_push_request_errors(mcluster, (int16_t)api_key, 1,
                                          (rd_kafka_resp_err_t)code);
        reply_ok();
}

/* Returns 0 to keep reading, 1 to quit. */
static int handle_line(char *line) {
        char *save = NULL;
        char *cmd  = strtok_r(line, " \t\r\n", &save);
        char *arg1 = strtok_r(NULL, " \t\r\n", &save);
        char *arg2 = strtok_r(NULL, " \t\r\n", &save);
        char *rest = strtok_r(NULL, " \t\r\n", &save);

        if (!cmd) {
                reply_error("%s", "empty command");
        } else if (rest) {
                reply_error("too many arguments to '%s'", cmd);
        } else if (!strcmp(cmd, "quit")) {
                return 1;
        } else if (!strcmp(cmd, "down") && !arg2) {
                cmd_updown(arg1, 0);
        } else if (!strcmp(cmd, "up") && !arg2) {
                cmd_updown(arg1, 1);
        } else if (!strcmp(cmd, "rtt")) {
                cmd_rtt(arg1, arg2);
        } else if (!strcmp(cmd, "topic")) {
                cmd_topic(arg1, arg2);
        } else if (!strcmp(cmd, "coordinator")) {
                cmd_coordinator(arg1, arg2);
        } else if (!strcmp(cmd, "error")) {
                cmd_error(arg1, arg2);
        } else {
                reply_error("unknown command '%s'", cmd);
        }
        return 0;
}

static void usage_exit(const char *why, const char *arg) {
        fprintf(stderr, "kafka-mock: ");
        fprintf(stderr, why, arg);
        fprintf(stderr,
                "\nusage: kafka-mock [--brokers N] [--topic NAME:PARTITIONS]...\n");
        exit(2);
}

int main(int argc, char **argv) {
        static unsigned char pipes_before[MAX_FDS], pipes_after[MAX_FDS];
        char errstr[512];
        char line[MAX_LINE];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        int exit_code = 0;
        int quit      = 0;
        int i;

        /* A vanished test runner must not kill us mid-reply with SIGPIPE;
         * we notice EOF on stdin and exit cleanly instead. */
        signal(SIGPIPE, SIG_IGN);

        /* Validate everything before the cluster exists. */
        for (i = 1; i < argc; i++) {
                long n;

                if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        if (parse_int(argv[++i], 1, MAX_BROKERS, &n))
                                usage_exit("bad --brokers '%s'", argv[i]);
                        broker_cnt = (int)n;
                } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
                        const char *colon = strrchr(argv[++i], ':');
                        if (!colon || colon == argv[i] ||
                            parse_int(colon + 1, 1, 10000, &n))
                                usage_exit("bad --topic '%s'", argv[i]);
                } else {
                        usage_exit("bad argument '%s'", argv[i]);
                }
        }

        /* The handle only hosts the cluster (its threads and logger); it
         * never connects anywhere itself. */
        conf = rd_kafka_conf_new();
        /* log_level 4 drops the "No bootstrap.servers" notice but keeps
         * the mock's warnings and errors. */
        if (rd_kafka_conf_set(conf, "client.id", "kafka-mock", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", "4", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "kafka-mock: %s\n", errstr);
                return 1;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
                return 1;
        }

        scan_pipe_write_ends(pipes_before);
        mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mcluster) {
                fprintf(stderr, "kafka-mock: rd_kafka_mock_cluster_new failed\n");
                rd_kafka_destroy(rk);
                return 1;
        }
        scan_pipe_write_ends(pipes_after);
        wakeup_fd      = find_wakeup_fd(pipes_before, pipes_after);
        ticker_started = wakeup_fd != -1 &&
                         !pthread_create(&ticker, NULL, ticker_main, NULL);
        if (!ticker_started)
                fprintf(stderr, "kafka-mock: warning: no wake-up ticker; "
                                "commands may take up to ~1 s\n");
        set_ticking(1);
        for (i = 1; i <= broker_cnt; i++)
                broker_up[i] = 1;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--topic")) {
                        char *spec  = argv[++i];
                        char *colon = strrchr(spec, ':');
                        rd_kafka_resp_err_t err;

                        *colon = '\0';
                        err = create_topic(spec, atoi(colon + 1));
                        if (err) {
                                fprintf(stderr,
                                        "kafka-mock: topic %s: %s\n", spec,
                                        rd_kafka_err2str(err));
                                exit_code = 1;
                                goto out;
                        }
                } else if (!strcmp(argv[i], "--brokers")) {
                        i++;
                }
        }

        set_ticking(0);

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                if (!strchr(line, '\n') && !feof(stdin)) {
                        int c;
                        /* Overlong line: drop the rest, answer once. */
                        while ((c = getchar()) != EOF && c != '\n')
                                ;
                        reply_error("%s", "line too long");
                        continue;
                }
                set_ticking(1);
                quit = handle_line(line);
                set_ticking(0);
                if (quit)
                        break;
        }

out:
        /* Destroy is an op too: keep poking until the mock thread is gone. */
        set_ticking(1);
        rd_kafka_mock_cluster_destroy(mcluster);
        if (ticker_started) {
                pthread_mutex_lock(&tick_lock);
                tick_quit = 1;
                pthread_cond_signal(&tick_cond);
                pthread_mutex_unlock(&tick_lock);
                pthread_join(ticker, NULL);
        }
        if (wakeup_fd != -1)
                close(wakeup_fd);
        rd_kafka_destroy(rk);
        for (i = 0; (size_t)i < topic_cnt; i++) {
                free(topics[i].name);
                free(topics[i].leaders);
        }
        free(topics);
        return exit_code;
}
