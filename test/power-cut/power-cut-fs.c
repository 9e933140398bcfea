/*
 * power-cut-fs: an in-memory FUSE file system that loses what a power cut loses, for the test suite's
 * power-cut test (test/power-cut/). A process crash never loses the kernel's page cache, so kill -9 cannot
 * tell a commit that reached the disk from one that did not; this file system can.
 *
 * Usage: power-cut-fs [--ignore-fsync] IMAGE MOUNTPOINT
 *
 * Model. Every file and directory has two states:
 *   - what processes see (volatile): every write, create, rename, unlink takes effect here at once;
 *   - what a power cut keeps (durable): a file's data and mode become durable when the file is fsynced
 *     (fsync or fdatasync); a directory's entries (names -> files) become durable when the directory
 *     itself is fsynced. So a file created, renamed or removed since its directory was last fsynced is
 *     back as it was after a cut, and a file whose name never became durable is gone with its data.
 * That is the POSIX minimum; a real disk often keeps more (ext4 commits its journal every few seconds), so
 * software that survives this survives a real cut.
 *
 * Control. SIGUSR1 is the power cut: from then on every operation fails with EIO, as the disk is gone, and
 * the durable state is written to IMAGE at once. SIGUSR2 is a clean shutdown's sync: everything is written
 * to IMAGE. Either way the daemon says "image written" on stderr when IMAGE is complete; then the test kills
 * the processes using the mount, unmounts it and may kill the daemon (a mount namespace created meanwhile,
 * by systemd-nspawn for example, can hold a copy of the mount and keep the daemon from ever seeing the
 * unmount). An unmount without either signal writes everything too. The next daemon starts from IMAGE
 * (absent: an empty file system). So "cut, kill, unmount, mount again" is a power cut and a reboot.
 *
 * --ignore-fsync: fsync and fdatasync of files succeed without making anything durable (directory fsyncs
 * still work): a disk that lies about flushing its cache. The power-cut test's control uses it to prove
 * the test can see a loss.
 *
 * Not modelled: hard links, symlinks, extended attributes, partial (torn) writes of unsynced data. POSIX
 * locks are handled by the kernel (no lock operation here), as FUSE does when a file system has none.
 * FUSE runs single-threaded (-s); a second thread waits for the signals and takes the state lock, which
 * every operation holds, to write the image.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct entry {
    char *name;
    struct node *node;
};

struct entries {
    struct entry *items;
    size_t count;
    size_t capacity;
};

struct bytes {
    unsigned char *data;
    size_t size;
    size_t capacity;
};

struct node {
    mode_t mode;
    mode_t durable_mode;
    uid_t uid;
    gid_t gid;
    struct timespec mtime;
    struct timespec ctime;
    struct timespec atime;
    /* Regular files. */
    struct bytes data;
    struct bytes durable_data;
    /* Directories. */
    struct entries children;
    struct entries durable_children;
    /* Names that link to it now; open handles. Nodes are never freed: a test's file system is small and
     * short-lived, and a node unlinked now may still be durably linked until its directory is synced. */
    unsigned nlink;
    unsigned open_count;
};

static struct node *root;
static const char *image_path;
static int ignore_fsync;
/* Set under state_lock by the signal thread; read under it by every operation. */
static int power_cut;
static int image_written;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static void release_state(int *unused) {
    (void)unused;
    pthread_mutex_unlock(&state_lock);
}

/* Every operation holds the state lock until it returns (the cleanup attribute unlocks on any return). */
#define HOLD_STATE()                  \
    pthread_mutex_lock(&state_lock); \
    int state_guard __attribute__((cleanup(release_state))) = 0; \
    (void)state_guard

/* --- helpers ------------------------------------------------------------------------------------------- */

static void now(struct timespec *ts) { clock_gettime(CLOCK_REALTIME, ts); }

static void *xrealloc(void *pointer, size_t size) {
    void *result = realloc(pointer, size == 0 ? 1 : size);
    if (result == NULL) {
        fprintf(stderr, "power-cut-fs: out of memory\n");
        abort();
    }
    return result;
}

static char *xstrdup(const char *text) {
    size_t length = strlen(text) + 1;
    char *copy = xrealloc(NULL, length);
    memcpy(copy, text, length);
    return copy;
}

static struct node *node_new(mode_t mode) {
    struct node *node = xrealloc(NULL, sizeof *node);
    memset(node, 0, sizeof *node);
    node->mode = mode;
    node->durable_mode = mode;
    struct fuse_context *context = fuse_get_context();
    int in_request = context != NULL && context->fuse != NULL;
    node->uid = in_request ? context->uid : getuid();
    node->gid = in_request ? context->gid : getgid();
    now(&node->mtime);
    node->ctime = node->mtime;
    node->atime = node->mtime;
    return node;
}

static void bytes_reserve(struct bytes *bytes, size_t size) {
    if (size <= bytes->capacity) return;
    size_t capacity = bytes->capacity == 0 ? 4096 : bytes->capacity;
    while (capacity < size) capacity *= 2;
    bytes->data = xrealloc(bytes->data, capacity);
    bytes->capacity = capacity;
}

static void bytes_resize(struct bytes *bytes, size_t size) {
    bytes_reserve(bytes, size);
    if (size > bytes->size) memset(bytes->data + bytes->size, 0, size - bytes->size);
    bytes->size = size;
}

static void bytes_copy(struct bytes *to, const struct bytes *from) {
    bytes_reserve(to, from->size);
    if (from->size > 0) memcpy(to->data, from->data, from->size);
    to->size = from->size;
}

static void entries_copy(struct entries *to, const struct entries *from) {
    for (size_t i = 0; i < to->count; i++) free(to->items[i].name);
    to->items = xrealloc(to->items, from->count * sizeof *to->items);
    to->capacity = from->count;
    to->count = from->count;
    for (size_t i = 0; i < from->count; i++) {
        to->items[i].name = xstrdup(from->items[i].name);
        to->items[i].node = from->items[i].node;
    }
}

static struct entry *entries_find(struct entries *entries, const char *name) {
    for (size_t i = 0; i < entries->count; i++)
        if (strcmp(entries->items[i].name, name) == 0) return &entries->items[i];
    return NULL;
}

static void entries_add(struct entries *entries, const char *name, struct node *node) {
    if (entries->count == entries->capacity) {
        entries->capacity = entries->capacity == 0 ? 8 : entries->capacity * 2;
        entries->items = xrealloc(entries->items, entries->capacity * sizeof *entries->items);
    }
    entries->items[entries->count].name = xstrdup(name);
    entries->items[entries->count].node = node;
    entries->count++;
}

static void entries_remove(struct entries *entries, struct entry *entry) {
    free(entry->name);
    size_t index = (size_t)(entry - entries->items);
    memmove(&entries->items[index], &entries->items[index + 1], (entries->count - index - 1) * sizeof *entries->items);
    entries->count--;
}

/* Walks `path` from the root through the entries processes see now. */
static struct node *lookup(const char *path) {
    struct node *node = root;
    char *copy = xstrdup(path);
    char *saveptr = NULL;
    for (char *part = strtok_r(copy, "/", &saveptr); part != NULL; part = strtok_r(NULL, "/", &saveptr)) {
        if (!S_ISDIR(node->mode)) {
            node = NULL;
            break;
        }
        struct entry *entry = entries_find(&node->children, part);
        if (entry == NULL) {
            node = NULL;
            break;
        }
        node = entry->node;
    }
    free(copy);
    return node;
}

/* The directory holding `path` and the last name in it; NULL parent when the directory does not exist. */
static struct node *lookup_parent(const char *path, const char **name) {
    const char *slash = strrchr(path, '/');
    *name = slash == NULL ? path : slash + 1;
    if (slash == NULL || slash == path) return root;
    size_t length = (size_t)(slash - path);
    char *dir = xrealloc(NULL, length + 1);
    memcpy(dir, path, length);
    dir[length] = '\0';
    struct node *parent = lookup(dir);
    free(dir);
    return parent != NULL && S_ISDIR(parent->mode) ? parent : NULL;
}

static struct node *node_of(const char *path, struct fuse_file_info *fi) {
    if (fi != NULL && fi->fh != 0) return (struct node *)(uintptr_t)fi->fh;
    return path == NULL ? NULL : lookup(path);
}

#define REFUSE_AFTER_CUT() \
    HOLD_STATE();          \
    if (power_cut) return -EIO

/* --- operations ---------------------------------------------------------------------------------------- */

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *config) {
    (void)conn;
    /* Nothing cached in the kernel beyond an open file's lifetime: after a cut and remount, reads come here. */
    config->entry_timeout = 0;
    config->attr_timeout = 0;
    config->negative_timeout = 0;
    config->kernel_cache = 0;
    config->direct_io = 0; /* SQLite maps its -shm file: shared mmap needs the page cache */
    config->hard_remove = 1;
    config->nullpath_ok = 1;
    config->use_ino = 0;
    return NULL;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    memset(st, 0, sizeof *st);
    st->st_mode = node->mode;
    st->st_nlink = S_ISDIR(node->mode) ? 2 : (node->nlink == 0 ? 1 : node->nlink);
    st->st_uid = node->uid;
    st->st_gid = node->gid;
    st->st_size = S_ISREG(node->mode) ? (off_t)node->data.size : 4096;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_mtim = node->mtime;
    st->st_ctim = node->ctime;
    st->st_atim = node->atime;
    return 0;
}

static int pc_access(const char *path, int mask) {
    (void)mask;
    REFUSE_AFTER_CUT();
    return lookup(path) == NULL ? -ENOENT : 0;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = lookup(path);
    if (node == NULL) return -ENOENT;
    if (!S_ISDIR(node->mode)) return -ENOTDIR;
    node->open_count++;
    fi->fh = (uint64_t)(uintptr_t)node;
    return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi) {
    (void)path;
    HOLD_STATE();
    struct node *node = node_of(NULL, fi);
    if (node != NULL && node->open_count > 0) node->open_count--;
    return 0;
}

static int pc_readdir(const char *path, void *buffer, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
    (void)offset;
    (void)flags;
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    fill(buffer, ".", NULL, 0, 0);
    fill(buffer, "..", NULL, 0, 0);
    for (size_t i = 0; i < node->children.count; i++) fill(buffer, node->children.items[i].name, NULL, 0, 0);
    return 0;
}

static int make_node(const char *path, mode_t mode, struct node **created) {
    const char *name;
    struct node *parent = lookup_parent(path, &name);
    if (parent == NULL) return -ENOENT;
    if (strlen(name) > 255) return -ENAMETOOLONG;
    if (entries_find(&parent->children, name) != NULL) return -EEXIST;
    struct node *node = node_new(mode);
    node->durable_mode = mode;
    node->nlink = 1;
    entries_add(&parent->children, name, node);
    now(&parent->mtime);
    parent->ctime = parent->mtime;
    *created = node;
    return 0;
}

static int pc_mkdir(const char *path, mode_t mode) {
    REFUSE_AFTER_CUT();
    struct node *node;
    return make_node(path, (mode & 07777) | S_IFDIR, &node);
}

static int pc_mknod(const char *path, mode_t mode, dev_t rdev) {
    (void)rdev;
    REFUSE_AFTER_CUT();
    if (!S_ISREG(mode)) return -EPERM;
    struct node *node;
    return make_node(path, mode, &node);
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node;
    int result = make_node(path, (mode & 07777) | S_IFREG, &node);
    if (result != 0) return result;
    node->open_count++;
    fi->fh = (uint64_t)(uintptr_t)node;
    return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = lookup(path);
    if (node == NULL) return -ENOENT;
    if (S_ISDIR(node->mode)) return -EISDIR;
    if (fi->flags & O_TRUNC) bytes_resize(&node->data, 0);
    node->open_count++;
    fi->fh = (uint64_t)(uintptr_t)node;
    return 0;
}

static int pc_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    HOLD_STATE();
    struct node *node = node_of(NULL, fi);
    if (node != NULL && node->open_count > 0) node->open_count--;
    return 0;
}

static int pc_read(const char *path, char *buffer, size_t size, off_t offset, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (offset < 0 || (size_t)offset >= node->data.size) return 0;
    size_t available = node->data.size - (size_t)offset;
    if (size > available) size = available;
    memcpy(buffer, node->data.data + offset, size);
    return (int)size;
}

static int pc_write(const char *path, const char *buffer, size_t size, off_t offset, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (offset < 0) return -EINVAL;
    size_t end = (size_t)offset + size;
    if (end > node->data.size) bytes_resize(&node->data, end);
    memcpy(node->data.data + offset, buffer, size);
    now(&node->mtime);
    node->ctime = node->mtime;
    return (int)size;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (S_ISDIR(node->mode)) return -EISDIR;
    if (size < 0) return -EINVAL;
    bytes_resize(&node->data, (size_t)size);
    now(&node->mtime);
    node->ctime = node->mtime;
    return 0;
}

static int pc_fallocate(const char *path, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    if (mode != 0) return -EOPNOTSUPP;
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    size_t end = (size_t)(offset + length);
    if (end > node->data.size) bytes_resize(&node->data, end);
    return 0;
}

static int pc_unlink(const char *path) {
    REFUSE_AFTER_CUT();
    const char *name;
    struct node *parent = lookup_parent(path, &name);
    if (parent == NULL) return -ENOENT;
    struct entry *entry = entries_find(&parent->children, name);
    if (entry == NULL) return -ENOENT;
    if (S_ISDIR(entry->node->mode)) return -EISDIR;
    entry->node->nlink--;
    entries_remove(&parent->children, entry);
    now(&parent->mtime);
    return 0;
}

static int pc_rmdir(const char *path) {
    REFUSE_AFTER_CUT();
    const char *name;
    struct node *parent = lookup_parent(path, &name);
    if (parent == NULL) return -ENOENT;
    struct entry *entry = entries_find(&parent->children, name);
    if (entry == NULL) return -ENOENT;
    if (!S_ISDIR(entry->node->mode)) return -ENOTDIR;
    if (entry->node->children.count > 0) return -ENOTEMPTY;
    entry->node->nlink--;
    entries_remove(&parent->children, entry);
    now(&parent->mtime);
    return 0;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
    REFUSE_AFTER_CUT();
    if (flags & ~RENAME_NOREPLACE) return -EINVAL;
    const char *from_name;
    const char *to_name;
    struct node *from_parent = lookup_parent(from, &from_name);
    struct node *to_parent = lookup_parent(to, &to_name);
    if (from_parent == NULL || to_parent == NULL) return -ENOENT;
    struct entry *source = entries_find(&from_parent->children, from_name);
    if (source == NULL) return -ENOENT;
    struct node *moving = source->node;
    struct entry *target = entries_find(&to_parent->children, to_name);
    if (target != NULL) {
        if (target->node == moving) return 0;
        if (flags & RENAME_NOREPLACE) return -EEXIST;
        if (S_ISDIR(target->node->mode) && target->node->children.count > 0) return -ENOTEMPTY;
        target->node->nlink--;
        entries_remove(&to_parent->children, target);
        source = entries_find(&from_parent->children, from_name); /* the array may have moved */
    }
    entries_remove(&from_parent->children, source);
    entries_add(&to_parent->children, to_name, moving);
    now(&from_parent->mtime);
    to_parent->mtime = from_parent->mtime;
    return 0;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    node->mode = (node->mode & S_IFMT) | (mode & 07777);
    now(&node->ctime);
    return 0;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (uid != (uid_t)-1) node->uid = uid;
    if (gid != (gid_t)-1) node->gid = gid;
    now(&node->ctime);
    return 0;
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (tv == NULL) {
        now(&node->atime);
        node->mtime = node->atime;
    } else {
        if (tv[0].tv_nsec != UTIME_OMIT) node->atime = tv[0];
        if (tv[1].tv_nsec != UTIME_OMIT) node->mtime = tv[1];
    }
    return 0;
}

static int pc_statfs(const char *path, struct statvfs *st) {
    (void)path;
    REFUSE_AFTER_CUT();
    memset(st, 0, sizeof *st);
    st->f_bsize = 4096;
    st->f_frsize = 4096;
    st->f_blocks = 1 << 20; /* 4 GiB, nominally */
    st->f_bfree = 1 << 20;
    st->f_bavail = 1 << 20;
    st->f_files = 1 << 20;
    st->f_ffree = 1 << 20;
    st->f_namemax = 255;
    return 0;
}

static int pc_flush(const char *path, struct fuse_file_info *fi) {
    (void)path;
    (void)fi;
    /* close() is not a sync: nothing becomes durable here. */
    REFUSE_AFTER_CUT();
    return 0;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)datasync; /* the mode counts as data here: the cut keeps both or neither */
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    if (ignore_fsync) return 0;
    bytes_copy(&node->durable_data, &node->data);
    node->durable_mode = node->mode;
    return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)datasync;
    REFUSE_AFTER_CUT();
    struct node *node = node_of(path, fi);
    if (node == NULL) return -ENOENT;
    entries_copy(&node->durable_children, &node->children);
    node->durable_mode = node->mode;
    return 0;
}

/* --- image --------------------------------------------------------------------------------------------- */
/* Per node: u32 mode, u32 uid, u32 gid, i64 mtime seconds; a file then has u64 size + bytes; a directory
 * u32 count + per entry u16 name length, name, node (recursively). Everything in an image is durable. */

static int write_all(FILE *file, const void *data, size_t size) { return size == 0 || fwrite(data, 1, size, file) == size ? 0 : -1; }

static int dump_node(FILE *file, struct node *node, int durable, unsigned depth) {
    if (depth > 64) return -1;
    uint32_t header[3] = {(uint32_t)(durable ? node->durable_mode : node->mode), (uint32_t)node->uid, (uint32_t)node->gid};
    int64_t mtime = (int64_t)node->mtime.tv_sec;
    if (write_all(file, header, sizeof header) || write_all(file, &mtime, sizeof mtime)) return -1;
    if (S_ISREG(node->mode)) {
        struct bytes *bytes = durable ? &node->durable_data : &node->data;
        uint64_t size = bytes->size;
        return write_all(file, &size, sizeof size) || write_all(file, bytes->data, bytes->size) ? -1 : 0;
    }
    struct entries *entries = durable ? &node->durable_children : &node->children;
    uint32_t count = (uint32_t)entries->count;
    if (write_all(file, &count, sizeof count)) return -1;
    for (size_t i = 0; i < entries->count; i++) {
        uint16_t length = (uint16_t)strlen(entries->items[i].name);
        if (write_all(file, &length, sizeof length) || write_all(file, entries->items[i].name, length)) return -1;
        if (dump_node(file, entries->items[i].node, durable, depth + 1)) return -1;
    }
    return 0;
}

static int read_all(FILE *file, void *data, size_t size) { return size == 0 || fread(data, 1, size, file) == size ? 0 : -1; }

static struct node *load_node(FILE *file, unsigned depth) {
    uint32_t header[3];
    int64_t mtime;
    if (depth > 64 || read_all(file, header, sizeof header) || read_all(file, &mtime, sizeof mtime)) return NULL;
    struct node *node = xrealloc(NULL, sizeof *node);
    memset(node, 0, sizeof *node);
    node->mode = node->durable_mode = (mode_t)header[0];
    node->uid = (uid_t)header[1];
    node->gid = (gid_t)header[2];
    node->mtime.tv_sec = (time_t)mtime;
    node->ctime = node->atime = node->mtime;
    node->nlink = 1;
    if (S_ISREG(node->mode)) {
        uint64_t size;
        if (read_all(file, &size, sizeof size) || size > ((uint64_t)1 << 34)) return NULL;
        bytes_resize(&node->data, (size_t)size);
        if (read_all(file, node->data.data, (size_t)size)) return NULL;
        bytes_copy(&node->durable_data, &node->data);
        return node;
    }
    if (!S_ISDIR(node->mode)) return NULL;
    uint32_t count;
    if (read_all(file, &count, sizeof count)) return NULL;
    for (uint32_t i = 0; i < count; i++) {
        uint16_t length;
        char name[256];
        if (read_all(file, &length, sizeof length) || length == 0 || length > 255 || read_all(file, name, length)) return NULL;
        name[length] = '\0';
        struct node *child = load_node(file, depth + 1);
        if (child == NULL) return NULL;
        entries_add(&node->children, name, child);
    }
    entries_copy(&node->durable_children, &node->children);
    return node;
}

/* After a cut: what the disk kept. Otherwise: everything (a clean shutdown syncs). Call with state_lock held. */
static void write_image(void) {
    char temp[4096];
    snprintf(temp, sizeof temp, "%s.tmp", image_path);
    FILE *file = fopen(temp, "wb");
    if (file == NULL || dump_node(file, root, power_cut != 0, 0) != 0 || fclose(file) != 0 || rename(temp, image_path) != 0) {
        perror("power-cut-fs: cannot write the image");
        exit(1);
    }
    image_written = 1;
    fprintf(stderr, "power-cut-fs: image written (%s state)\n", power_cut ? "durable" : "full");
    fflush(stderr);
}

static void pc_destroy(void *private_data) {
    (void)private_data;
    pthread_mutex_lock(&state_lock);
    if (!image_written) write_image();
    pthread_mutex_unlock(&state_lock);
}

/* SIGUSR1: the power fails. SIGUSR2: a clean shutdown's sync. Both are blocked in every other thread. */
static void *signal_thread(void *unused) {
    (void)unused;
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    for (;;) {
        int received;
        if (sigwait(&signals, &received) != 0) continue;
        pthread_mutex_lock(&state_lock);
        if (received == SIGUSR1) power_cut = 1;
        write_image();
        pthread_mutex_unlock(&state_lock);
    }
    return NULL;
}

static const struct fuse_operations operations = {
    .init = pc_init,
    .destroy = pc_destroy,
    .getattr = pc_getattr,
    .access = pc_access,
    .opendir = pc_opendir,
    .releasedir = pc_releasedir,
    .readdir = pc_readdir,
    .mkdir = pc_mkdir,
    .mknod = pc_mknod,
    .create = pc_create,
    .open = pc_open,
    .release = pc_release,
    .read = pc_read,
    .write = pc_write,
    .truncate = pc_truncate,
    .fallocate = pc_fallocate,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .rename = pc_rename,
    .chmod = pc_chmod,
    .chown = pc_chown,
    .utimens = pc_utimens,
    .statfs = pc_statfs,
    .flush = pc_flush,
    .fsync = pc_fsync,
    .fsyncdir = pc_fsyncdir,
};

int main(int argc, char *argv[]) {
    int next = 1;
    if (next < argc && strcmp(argv[next], "--ignore-fsync") == 0) {
        ignore_fsync = 1;
        next++;
    }
    if (argc - next != 2) {
        fprintf(stderr, "usage: power-cut-fs [--ignore-fsync] IMAGE MOUNTPOINT\n");
        return 2;
    }
    /* libfuse changes to / once mounted: keep the image's path absolute. */
    static char absolute[4096];
    if (argv[next][0] == '/') image_path = argv[next];
    else if (getcwd(absolute, sizeof absolute - 1) != NULL && strlen(absolute) + strlen(argv[next]) + 2 < sizeof absolute) {
        strcat(absolute, "/");
        strcat(absolute, argv[next]);
        image_path = absolute;
    } else {
        fprintf(stderr, "power-cut-fs: image path too long\n");
        return 2;
    }
    const char *mountpoint = argv[next + 1];

    FILE *image = fopen(image_path, "rb");
    if (image != NULL) {
        root = load_node(image, 0);
        fclose(image);
        if (root == NULL || !S_ISDIR(root->mode)) {
            fprintf(stderr, "power-cut-fs: %s is not a valid image\n", image_path);
            return 1;
        }
    } else {
        root = node_new(S_IFDIR | 0755);
    }
    root->nlink = 1;

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &signals, NULL); /* inherited by libfuse's threads: only signal_thread takes them */
    pthread_t waiter;
    if (pthread_create(&waiter, NULL, signal_thread, NULL) != 0) {
        fprintf(stderr, "power-cut-fs: cannot start the signal thread\n");
        return 1;
    }
    pthread_detach(waiter);

    /* -f: stay in the foreground (the test owns the process); -s: one thread. */
    char *fuse_argv[] = {argv[0], "-f", "-s", "-o", "fsname=power-cut-fs,subtype=power-cut-fs", (char *)mountpoint, NULL};
    return fuse_main(6, fuse_argv, &operations, NULL);
}
