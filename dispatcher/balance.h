/* balance.h - moving running work from slow or busy nodes to idle ones, by observed progress. */
#ifndef DISPATCH_BALANCE_H
#define DISPATCH_BALANCE_H

#include "core.h"

/*
 * One balancing pass (core lock held), run every second by the timer. For
 * each node with a free slot and nothing pending to place on it, it looks
 * at the running instances of balanced jobs elsewhere and predicts, from
 * their observed progress rates and the nodes' learned speeds for that
 * object, how long each would take where it is and how long on the idle
 * node including the measured cost of a move. The instance with the largest
 * predicted gain moves when the gain beats both 2 s and 15% of its time
 * where it is. Instances on drained nodes move to any idle node. Every decision is logged and written to
 * the instance's history with its reason. docs/scheduling.md has the policy.
 */
void balance_pass(struct core *c);

#endif
