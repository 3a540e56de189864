// placeholder, replaced by the shepherd
int main() { return 3; }
