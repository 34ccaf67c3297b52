/* cli.h — the `nextcard` sub-commands.  One file per command: host/cli/cmd_<name>.c.
 * Each returns the process exit status and prints a one-line error on failure. */
#ifndef HOST_CLI_H
#define HOST_CLI_H

int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
/* In host/net/dp/ (DPDK); weak in main.c so builds without DPDK still link. */
int cmd_serve(int argc, char **argv);
int cmd_http(int argc, char **argv);

#endif
