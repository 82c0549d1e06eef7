/* pskgw_list: the one intrusive doubly linked list of the gateway (issue 18.3), in the style of the
 * Linux list_head and FreeBSD's <sys/queue.h> TAILQ: the owner embeds a pskgw_list_t link in its
 * element and a pskgw_list_t head in the container; pskgw_container_of() gets the element back.
 *
 * The head is circular (an empty list points at itself) and must be pskgw_list_init()ed before
 * use. A link that is in no list has both pointers NULL: a zeroed element (calloc, `= { 0 }`) is
 * unlinked, and pskgw_list_remove() leaves the link NULL again, so pskgw_list_linked() tells
 * whether an element is in a list. A link is in at most one list at a time.
 *
 * Ownership: the list owns nothing. Elements belong to whoever allocated them; the list only
 * points at their links. Nothing allocates, nothing fails, every operation is O(1) (except the
 * loops). Not thread-safe (like every module of the loop). Header only.
 */
#ifndef PSKGW_COMMON_LIST_H
#define PSKGW_COMMON_LIST_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pskgw_list {
    struct pskgw_list *next; /* head: first element (itself when empty); link: NULL if unlinked */
    struct pskgw_list *prev; /* head: last element (itself when empty); link: NULL if unlinked */
} pskgw_list_t;

/* The object of type `type` whose member `member` is at ptr. */
#define pskgw_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* An empty head, for static initialisers: `pskgw_list_t l = PSKGW_LIST_HEAD_INIT(l);`. */
#define PSKGW_LIST_HEAD_INIT(name) \
    {                              \
        &(name), &(name)           \
    }

/* Make head an empty list (also to forget what it held: the elements are not touched). */
static inline void pskgw_list_init(pskgw_list_t *head)
{
    head->next = head;
    head->prev = head;
}

static inline bool pskgw_list_empty(const pskgw_list_t *head)
{
    return head->next == head;
}

/* Whether the element's link is in a list (false for a zeroed or removed link). */
static inline bool pskgw_list_linked(const pskgw_list_t *link)
{
    return link->next != NULL;
}

static inline void pskgw_list_insert_between_(pskgw_list_t *link, pskgw_list_t *prev,
                                              pskgw_list_t *next)
{
    assert(link->next == NULL && link->prev == NULL); /* in one list at a time */
    link->prev = prev;
    link->next = next;
    prev->next = link;
    next->prev = link;
}

/* Insert an unlinked link first. */
static inline void pskgw_list_insert_head(pskgw_list_t *head, pskgw_list_t *link)
{
    pskgw_list_insert_between_(link, head, head->next);
}

/* Insert an unlinked link last. */
static inline void pskgw_list_insert_tail(pskgw_list_t *head, pskgw_list_t *link)
{
    pskgw_list_insert_between_(link, head->prev, head);
}

/* Take a linked link out of its list (the list is not named: the link knows its neighbours);
 * the link is unlinked afterwards. */
static inline void pskgw_list_remove(pskgw_list_t *link)
{
    assert(pskgw_list_linked(link));
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->next = NULL;
    link->prev = NULL;
}

/* The first / last link, or NULL when the list is empty. */
static inline pskgw_list_t *pskgw_list_first(const pskgw_list_t *head)
{
    return head->next != head ? head->next : NULL;
}

static inline pskgw_list_t *pskgw_list_last(const pskgw_list_t *head)
{
    return head->prev != head ? head->prev : NULL;
}

/* The element of a link (NULL stays NULL). */
#define pskgw_list_entry(link, type, member) \
    ((link) != NULL ? pskgw_container_of(link, type, member) : (type *)NULL)

/* Visit each link, first to last. The body must not remove `pos` (use the _safe form). */
#define pskgw_list_foreach(pos, head) \
    for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* Visit each link, first to last; the body may remove `pos` (and only `pos`): `tmp` holds the
 * next link. */
#define pskgw_list_foreach_safe(pos, tmp, head)                      \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
