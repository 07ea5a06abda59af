/*
 * The pod sandbox's init process (containerd's sandbox_image), built here because no registry
 * is reachable to pull registry.k8s.io/pause. Why C and not Rust: it is a dozen lines of libc
 * calls, and a static musl (or glibc) build is ~15-800 KB with no toolchain target to add; the
 * sandbox image is needed by every real-node test, so it must build on any machine with gcc.
 *
 * What it must do (what the kubelet and containerd expect of a pause container):
 * - be PID 1 of the pod's PID namespace when the pod shares one, so it reaps orphaned
 *   children (SIGCHLD -> waitpid loop) instead of leaving zombies;
 * - exit promptly and cleanly on SIGINT/SIGTERM (containerd stops the sandbox with SIGTERM;
 *   PID 1 ignores signals it has no handler for, so without handlers it would sit until SIGKILL);
 * - otherwise sleep forever without using CPU (pause()).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("sriov-rs pause 1");
        return 0;
    }
    struct sigaction stop_action = {.sa_handler = stop};
    struct sigaction reap_action = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigemptyset(&stop_action.sa_mask);
    sigemptyset(&reap_action.sa_mask);
    if (sigaction(SIGINT, &stop_action, NULL) < 0 || sigaction(SIGTERM, &stop_action, NULL) < 0 ||
        sigaction(SIGCHLD, &reap_action, NULL) < 0) {
        perror("sigaction");
        return 1;
    }
    for (;;) {
        pause();
    }
}
