pipeline {
    agent any
    stages {
        stage('A') {
            steps {
                script {
                    def tag = String.format('v%d.%02d', 1, 5)
                    def n = Integer.parseInt('7') + Math.max(1, 2)
                    def ordered = ['b', 'a'].sort { x, y -> x <=> y }
                    echo "${tag} ${n} ${ordered}"
                }
            }
        }
    }
}
