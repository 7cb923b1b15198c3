/*
 * upstream/list.cpp -- a program written the way yasukata/fmalloc's users
 * write them, kept unchanged: it must build with that project's flags
 * (-O3 -Werror -Wall -Wextra -std=c++11) under g++ and clang++ against our
 * fmalloc.hpp, and write the same file layout under both.
 *
 *   list FILE    first run: create FILE, write a head and nodes 0..9;
 *                later runs: print the values
 *
 * The node is packed (12 bytes, next at offset 4), as upstream's is; the
 * root object lives at fi->mem + PAGE_SIZE.  Nothing here checks errors,
 * as upstream's example does not: FM_FMALLOC_INIT_EXITS (set by the build)
 * makes fmalloc_init() exit with a message instead of returning NULL.
 */
#include <fmalloc.hpp>

struct node {
	int val;
	fm_ptr<struct node> next;
} __attribute__((packed));

struct app_super {
	fm_ptr<struct node> head;
};

static void list_append(struct node *head, struct node *newnode)
{
	struct node *n = head;
	while (n->next)
		n = n->next;
	n->next = newnode;
}

static void append_nodes(struct node *head)
{
	for (int i = 0; i < 10; i++) {
		struct node *n = (struct node *) fmalloc(sizeof(struct node));
		n->val = i;
		n->next = NULL;
		list_append(head, n);
	}
	printf("wrote 10 nodes\n");
}

static void read_nodes(struct node *head)
{
	struct node *n = head->next;
	while (n) {
		printf("%d\n", n->val);
		n = n->next;
	}
}

/* Frees every other node, so both builds also run ffree. */
static void drop_odd(struct node *head)
{
	struct node *prev = head;
	struct node *n = head->next;
	while (n) {
		struct node *next = n->next;
		if (n->val % 2) {
			prev->next = next;
			ffree(n);
		} else {
			prev = n;
		}
		n = next;
	}
}

int main(int argc, char const *argv[])
{
	struct app_super *super;
	bool init = false;
	struct fm_info *fi;

	if (argc < 2) {
		printf("please give a data file\n");
		exit(1);
	}

	fi = fmalloc_init(argv[1], &init);
	fmalloc_set_target(fi);

	super = (struct app_super *) ((unsigned long) fi->mem + PAGE_SIZE);

	if (init) {
		super->head = (struct node *) fmalloc(sizeof(struct node));
		super->head->val = -1;
		super->head->next = NULL;
		append_nodes(super->head);
	} else if (super->head) {
		read_nodes(super->head);
		if (argc > 2 && !strcmp(argv[2], "drop-odd"))
			drop_odd(super->head);
	}

	return 0;
}
