"""How a prompt becomes model input: chat rendering, the placement of a privileged context,
and the prepared prompt sets as the trainers read them."""
